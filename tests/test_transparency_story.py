"""The log leaves the building, end to end, with real processes on loopback.

A national ledger publishes its log as tiles; two provincial witnesses (``ledger witness serve``)
cosign its checkpoints under a 2-of-2 policy; a province follows it over HTTP (a plain
``python -m http.server`` of the folder) and republishes its copy, which an auditor follows. Then the
national operator forks its log (one decision rewritten, the history signed again with the same
key): the witnesses refuse to cosign, the followers stop with evidence and exit code 12, and the
forked checkpoint cannot reach the quorum.
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.errors import ForkDetected, QuorumMissing
from ledger.witness import WitnessState

pytestmark = pytest.mark.slow

LEDGER = str(Path(sys.executable).parent / "ledger")
ENV = {**os.environ, "LEDGER_DB": "", "PYTHONIOENCODING": "utf-8"}


def ledger(db: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    head = [LEDGER, "--db", str(db)] if db else [LEDGER]
    return subprocess.run([*head, *args], capture_output=True, text=True, check=False, env=ENV, timeout=300)


def ok(db: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    done = ledger(db, *args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def started(args: list[str], pattern: str, stream: str) -> tuple[subprocess.Popen[str], str]:
    """A background process and the first match of ``pattern`` in what it prints on ``stream``."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    return proc, printed(proc, pattern, stream)


def printed(proc: subprocess.Popen[str], pattern: str, stream: str = "stdout") -> str:
    """The first match of ``pattern`` in the next lines ``proc`` prints on ``stream``."""
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    assert pipe is not None
    selector = selectors.DefaultSelector()
    selector.register(pipe, selectors.EVENT_READ)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if selector.select(timeout=1):
            found = re.search(pattern, pipe.readline())
            if found:
                return found.group(1)
        assert proc.poll() is None, f"{proc.args!r} exited: {proc.communicate()}"
    proc.kill()
    raise AssertionError(f"{proc.args!r} printed no {pattern!r} in time")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    running: list[subprocess.Popen[str]] = []
    yield running
    for proc in running:
        proc.terminate()
    for proc in running:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_a_national_log_followed_witnessed_and_caught_forking(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    # The national ledger: the demo's decisions, the first 200 now and the rest later.
    ok(tmp_path / "demo.sqlite", "demo")
    lines = ok(tmp_path / "demo.sqlite", "export").stdout.splitlines(keepends=True)
    (tmp_path / "first.jsonl").write_text("".join(lines[:200]), encoding="utf-8")
    (tmp_path / "rest.jsonl").write_text("".join(lines[200:]), encoding="utf-8")
    national, key = tmp_path / "national.sqlite", tmp_path / "national.key"
    ok(national, "import", str(tmp_path / "first.jsonl"))
    ok(None, "keygen", "--name", "national", "-o", str(key))
    origin = ok(national, "checkpoint", "--key", str(key)).stdout.splitlines()[0]

    # Two provincial witnesses, each its own process and state, and the 2-of-2 policy.
    urls = {}
    for name in ("hunan", "sichuan"):
        wkey = tmp_path / f"{name}.witness"
        ok(None, "witness", "keygen", "--name", f"{name}-witness", "-o", str(wkey))
        args = [LEDGER, "witness", "serve", "--key", str(wkey), "--log", f"{origin}={key}.pub"]
        proc, urls[name] = started(
            [*args, "--state", str(tmp_path / f"{name}.state")], r"listening on (http://\S+)", "stderr"
        )
        processes.append(proc)
    policy = tmp_path / "policy.txt"
    policy.write_text(
        f"log {(tmp_path / 'national.key.pub').read_text().strip()}\n"
        + "".join(
            f"witness {name} {(tmp_path / f'{name}.witness.pub').read_text().strip()} {urls[name]}\n" for name in urls
        )
        + "group provinces all hunan sichuan\nquorum provinces\n",
        encoding="utf-8",
    )
    cosigned = ok(national, "checkpoint", "--key", str(key), "--policy", str(policy)).stdout
    assert "— hunan-witness " in cosigned and "— sichuan-witness " in cosigned
    ok(national, "verify", "--policy", str(policy))

    # Published as tiles, served by a web server that knows nothing of ledgers.
    natlog = tmp_path / "natlog"
    ok(national, "tiles", "--out", str(natlog))
    server, port = started(
        [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(natlog), "0"],
        r"port (\d+)",
        "stdout",
    )
    processes.append(server)
    url = f"http://127.0.0.1:{port}"

    # The province follows the national log; the auditor follows the province's republished copy.
    province, auditor, provlog = tmp_path / "province.sqlite", tmp_path / "auditor.sqlite", tmp_path / "provlog"
    assert (
        "200 records verified (200 new), cosigned by hunan, sichuan"
        in ok(province, "follow", url, "--policy", str(policy)).stdout
    )
    ok(province, "tiles", "--out", str(provlog))
    ok(auditor, "follow", str(provlog), "--policy", str(policy))

    # The national log grows; witnesses cosign with a consistency proof; the followers follow.
    ok(national, "import", str(tmp_path / "rest.jsonl"))
    ok(national, "checkpoint", "--key", str(key), "--policy", str(policy))
    written = ok(national, "tiles", "--out", str(natlog)).stderr
    assert "(size 200 -> 266)" in written
    assert "266 records verified (66 new)" in ok(province, "follow", url, "--policy", str(policy)).stdout
    ok(province, "tiles", "--out", str(provlog))
    assert "(66 new)" in ok(auditor, "follow", str(provlog), "--key", f"{key}.pub", "--policy", str(policy)).stdout
    for copy in (province, auditor):
        assert ok(copy, "export").stdout == ok(national, "export").stdout
        assert ok(copy, "trail", "--province", "hunan").stdout == ok(national, "trail", "--province", "hunan").stdout
        ok(copy, "verify", "--key", f"{key}.pub", "--policy", str(policy), "--strict")
    refused = ledger(province, "import", str(tmp_path / "rest.jsonl"))
    assert refused.returncode == 5 and "read-only copy" in refused.stderr

    # The fork: the same history with one decision rewritten and one more, signed again, same key.
    forked = tmp_path / "forked.sqlite"
    rewritten = lines[0].replace('"note":"', '"note":"(rewritten) ', 1)
    assert rewritten != lines[0]
    (tmp_path / "forked.jsonl").write_text(
        "".join([rewritten, *lines[1:], lines[0].replace("S01", "S99")]), encoding="utf-8"
    )
    ok(forked, "import", str(tmp_path / "forked.jsonl"))
    ok(forked, "checkpoint", "--key", str(key), "--origin", origin)
    denied = ledger(forked, "checkpoint", "--key", str(key), "--policy", str(policy))
    assert denied.returncode == QuorumMissing.exit_code
    assert "witness hunan-witness refused the checkpoint (422)" in denied.stderr
    assert "witness sichuan-witness refused the checkpoint (422)" in denied.stderr
    assert "lacks the quorum 'provinces'" in denied.stderr
    assert ledger(forked, "verify", "--policy", str(policy)).returncode == QuorumMissing.exit_code
    for name in ("hunan", "sichuan"):  # the forked ledger knew no witness size: 409 (the size), then 422
        assert [status for status, _, _ in WitnessState(tmp_path / f"{name}.state").evidence(origin)] == [409, 422]

    shutil.rmtree(natlog)  # the operator replaces the published log with the forked one
    ok(forked, "tiles", "--out", str(natlog))
    # A checkpoint the log signed is evidence whatever the witnesses said: the province, which
    # needs the quorum, and the auditor, with the key alone, both catch the fork.
    trusting = {province: ["--policy", str(policy)], auditor: ["--key", f"{key}.pub"]}
    for copy, trust in trusting.items():
        evidence = tmp_path / f"evidence-{copy.stem}"
        caught = ledger(copy, "follow", url, *trust, "--evidence", str(evidence))
        assert caught.returncode == ForkDetected.exit_code == 12, caught.stderr
        assert "not consistent with the one of 266" in caught.stderr
        (kept,) = evidence.iterdir()
        assert (kept / "old.checkpoint").read_text().startswith(origin + "\n266\n")
        assert (kept / "new.checkpoint").read_text().startswith(origin + "\n267\n")
        assert (kept / "consistency-proof.txt").read_text().strip()
    assert ok(province, "export").stdout == ok(national, "export").stdout  # the copy kept the true history


def test_following_with_poll_keeps_up(tmp_path: Path, processes: list[subprocess.Popen[str]]) -> None:
    ok(tmp_path / "demo.sqlite", "demo")
    lines = ok(tmp_path / "demo.sqlite", "export").stdout.splitlines(keepends=True)
    (tmp_path / "first.jsonl").write_text("".join(lines[:200]), encoding="utf-8")
    (tmp_path / "rest.jsonl").write_text("".join(lines[200:]), encoding="utf-8")
    national, key, log = tmp_path / "national.sqlite", tmp_path / "national.key", tmp_path / "log"
    ok(national, "import", str(tmp_path / "first.jsonl"))
    ok(None, "keygen", "--name", "national", "-o", str(key))
    ok(national, "checkpoint", "--key", str(key))
    ok(national, "tiles", "--out", str(log))
    args = ["--db", str(tmp_path / "copy.sqlite"), "follow", str(log), "--key", f"{key}.pub", "--poll", "0.2"]
    follower, first = started([LEDGER, *args], r"(\d+) records verified", "stdout")
    processes.append(follower)
    assert first == "200"
    ok(national, "import", str(tmp_path / "rest.jsonl"))
    ok(national, "checkpoint", "--key", str(key))
    ok(national, "tiles", "--out", str(log))
    assert printed(follower, r"(\d+) records verified \(66 new\)") == "266"
    follower.terminate()
    follower.wait(timeout=10)
    assert ok(tmp_path / "copy.sqlite", "export").stdout == ok(national, "export").stdout
