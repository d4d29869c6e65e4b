"""A real ``ledger serve`` process: it starts, answers what the CLI prints, stops cleanly on
SIGINT; refuses a ledger that is not there; and on PostgreSQL stays up through an outage,
answering 503 with Retry-After meanwhile. The outage is simulated: the server reaches PostgreSQL
through a TCP proxy this test stops (cutting every connection) and starts again, since restarting
the shared PostgreSQL server would disrupt everything else using it."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from api_helpers import Served, served

__all__ = ["served"]

pytestmark = pytest.mark.slow
LEDGER = str(Path(sys.executable).with_name("ledger"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(db: str, *extra: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``ledger serve`` on a free port until the block ends (SIGINT, then kill if it hangs)."""
    port = free_port()
    proc = subprocess.Popen(
        [LEDGER, "--db", db, "serve", "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the server did not answer within 60 s"
            time.sleep(0.2)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_a_server_process_starts_answers_and_stops(served: Served) -> None:
    with serving(served.read_db, "--workers", "2") as (proc, base):
        for _ in range(4):  # whichever worker answers, the same answer
            r = httpx.get(f"{base}/disclosure", params={"province": "hunan", "as_of": "2019-06-01"}, timeout=30)
            assert r.status_code == 200
            body = r.json()
            assert body.pop("ok") is True
            assert body == served.cli_json(
                "disclosure", "--province", "hunan", "--as-of", "2019-06-01", "--format", "json"
            )
        proof = httpx.get(f"{base}/proof/{served.ids['decision']}", timeout=30)
        assert proof.status_code == 200
        assert proof.json()["decision"]["id"] == served.ids["decision"]
        refused = httpx.post(f"{base}/catalog", timeout=30)
        assert refused.status_code == 405
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        _, err = proc.communicate()
        assert "Traceback" not in err


def test_a_ledger_that_is_not_there_is_refused_before_serving(tmp_path: Path) -> None:
    absent = tmp_path / "absent.sqlite"
    done = subprocess.run(
        [LEDGER, "--db", str(absent), "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 5
    assert "ledger init" in done.stderr
    assert "Traceback" not in done.stderr
    assert not absent.exists()


class Proxy:
    """A TCP proxy to PostgreSQL that can be stopped (every connection cut, new ones refused)
    and started again on the same port: a database restart as the server sees it."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream, self.port = upstream, free_port()
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        assert self.listener is not None
        self.listener.close()
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.mark.parametrize("served", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_the_server_stays_up_through_a_database_outage(served: Served) -> None:
    """PostgreSQL's outage only: a SQLite file does not restart."""
    url = urlparse(served.read_db)
    proxy = Proxy((url.hostname or "127.0.0.1", url.port or 5432))
    proxy.start()
    through = url._replace(netloc=f"{url.username}@127.0.0.1:{proxy.port}").geturl()
    expected = served.cli_json("catalog", "--province", "hunan", "--format", "json")
    with serving(through) as (proc, base):
        assert httpx.get(f"{base}/catalog?province=hunan", timeout=30).json()["rows"] == expected
        proxy.stop()
        down = httpx.get(f"{base}/catalog?province=hunan", timeout=30)
        assert down.status_code == 503, down.text
        assert down.headers["retry-after"] == "5"
        assert down.json()["status"] == 503
        assert "not answering" in down.json()["error"]
        assert proc.poll() is None
        proxy.start()
        deadline = time.monotonic() + 30
        while (back := httpx.get(f"{base}/catalog?province=hunan", timeout=30)).status_code != 200:
            assert back.status_code == 503
            assert time.monotonic() < deadline, "the server did not recover within 30 s of the database"
            time.sleep(0.5)
        assert back.json()["rows"] == expected
        assert proc.poll() is None
    proxy.stop()
    _, err = proc.communicate()
    assert "Traceback" not in err
