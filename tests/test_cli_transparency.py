"""The transparency commands in-process: witness keygen, checkpoint --witness/--policy against
witnesses served on loopback threads, verify and verify-proof --policy, follow's exit codes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import cosigning
from ledger.cosignature import CosignerKey, cosigned_by
from ledger.errors import ConfigurationError, QuorumMissing
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    assert run_cli(["demo"], str(folder / "demo.sqlite")).exit_code == 0
    return folder / "demo.sqlite"


@pytest.fixture
def national(tmp_path: Path, demo: Path) -> tuple[str, Path, str]:
    """A signed ledger: (db, signer key, origin)."""
    db = str(tmp_path / "national.sqlite")
    lines = run_cli(["export"], str(demo)).stdout.splitlines(keepends=True)
    (tmp_path / "first.jsonl").write_text("".join(lines[:200]), encoding="utf-8")
    (tmp_path / "rest.jsonl").write_text("".join(lines[200:]), encoding="utf-8")
    assert run_cli(["import", str(tmp_path / "first.jsonl")], db).exit_code == 0
    key = tmp_path / "national.key"
    assert run_cli(["keygen", "--name", "national", "-o", str(key)], db).exit_code == 0
    origin = run_cli(["checkpoint", "--key", str(key)], db).stdout.splitlines()[0]
    return db, key, origin


@pytest.fixture
def witnesses(tmp_path: Path, national: tuple[str, Path, str]) -> Iterator[dict[str, tuple[str, str]]]:
    """Two witnesses of the national log on loopback threads: name -> (verifier key, URL)."""
    from ledger.witness_http import make_server

    _, key, origin = national
    found: dict[str, tuple[str, str]] = {}
    servers = []
    for name in ("hunan", "sichuan"):
        wkey = tmp_path / f"{name}.witness"
        made = run_cli(["witness", "keygen", "--name", f"{name}-witness", "-o", str(wkey)], "unused")
        assert made.exit_code == 0 and made.stdout.strip() == Path(f"{wkey}.pub").read_text().strip()
        assert (wkey.stat().st_mode & 0o777) == 0o600
        witness = cosigning.load_witness(str(wkey), [f"{origin}={key}.pub"], str(tmp_path / f"{name}.state"))
        server = make_server(witness)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        found[name] = (made.stdout.strip(), f"http://127.0.0.1:{server.server_address[1]}")
    yield found
    for server in servers:
        server.shutdown()
        server.server_close()


def _policy(tmp_path: Path, key: Path, witnesses: dict[str, tuple[str, str]], quorum: str = "provinces") -> Path:
    path = tmp_path / "policy.txt"
    path.write_text(
        f"log {Path(f'{key}.pub').read_text().strip()}\n"
        + "".join(f"witness {name} {vkey} {url}\n" for name, (vkey, url) in witnesses.items())
        + f"group provinces all {' '.join(witnesses)}\nquorum {quorum}\n",
        encoding="utf-8",
    )
    return path


def test_checkpoint_with_witnesses_stores_the_cosigned_note(
    tmp_path: Path, national: tuple[str, Path, str], witnesses: dict[str, tuple[str, str]]
) -> None:
    db, key, _ = national
    specs = [f"--witness={name}={vkey}@{url}" for name, (vkey, url) in witnesses.items()]
    done = run_cli(["checkpoint", "--key", str(key), *specs], db)
    assert done.exit_code == 0, done.stderr
    keys = [CosignerKey.parse(vkey) for vkey, _ in witnesses.values()]
    assert set(cosigned_by(done.stdout, keys)) == {"hunan-witness", "sichuan-witness"}
    policy = _policy(tmp_path, key, witnesses)
    assert run_cli(["verify", "--policy", str(policy)], db).exit_code == 0
    # The log grows: each witness is asked from the size it last cosigned (a consistency proof).
    assert run_cli(["import", str(tmp_path / "rest.jsonl")], db).exit_code == 0
    again = run_cli(["checkpoint", "--key", str(key), "--policy", str(policy)], db)
    assert again.exit_code == 0, again.stderr
    proof = tmp_path / "proof.json"
    assert run_cli(["prove", "hunan/2018/listed/S01", "-o", str(proof)], db).exit_code == 0
    # The proof bundle carries the checkpoint as the witnesses cosigned it: the quorum holds offline.
    checked = run_cli(["verify-proof", str(proof), "--policy", str(policy)], db)
    assert checked.exit_code == 0, checked.stderr
    bundle = json.loads(proof.read_text(encoding="utf-8"))
    assert set(cosigned_by(bundle["checkpoint"], keys)) == {"hunan-witness", "sichuan-witness"}


def test_a_quorum_that_is_not_reached_fails_the_checkpoint_and_verify(
    tmp_path: Path, national: tuple[str, Path, str], witnesses: dict[str, tuple[str, str]]
) -> None:
    db, key, _ = national
    down = dict(witnesses)
    down["sichuan"] = (down["sichuan"][0], "http://127.0.0.1:9")  # nothing listens there
    policy = _policy(tmp_path, key, down)
    done = run_cli(["checkpoint", "--key", str(key), "--policy", str(policy), "--timeout", "2"], db)
    assert done.exit_code == QuorumMissing.exit_code == 13
    assert "Warning: witness sichuan-witness" in done.stderr and "lacks the quorum 'provinces'" in done.stderr
    assert "(cosigned by: hunan)" in done.stderr
    assert run_cli(["verify", "--policy", str(policy)], db).exit_code == 13
    assert run_cli(["verify", "--policy", str(_policy(tmp_path, key, down, quorum="hunan"))], db).exit_code == 0
    # a policy that cannot be read is the set-up's fault (5), with its file and line, not a missing quorum
    (tmp_path / "bad.policy").write_text(policy.read_text(encoding="utf-8") + "quorum\n", encoding="utf-8")
    bad = run_cli(["verify", "--policy", str(tmp_path / "bad.policy")], db)
    assert bad.exit_code == 5 and "bad.policy, line 6" in bad.stderr, bad.stderr


@pytest.mark.parametrize(
    "spec",
    ["hunan", "hunan=key@ftp://x", "=key@http://x", "hunan=nokey@http://127.0.0.1:1"],
)
def test_a_malformed_witness_is_refused(spec: str) -> None:
    with pytest.raises(ConfigurationError, match="--witness"):
        cosigning.parse_peer(spec)


def test_follow_without_a_key_or_from_nowhere_is_refused(tmp_path: Path) -> None:
    db = str(tmp_path / "copy.sqlite")
    assert run_cli(["follow", str(tmp_path)], db).exit_code == 5
    assert run_cli(["follow", str(tmp_path / "absent"), "--key", str(tmp_path / "k.pub")], db).exit_code == 5


def test_publish_writes_the_log_beside_the_site(tmp_path: Path, national: tuple[str, Path, str]) -> None:
    db, _, origin = national
    site = tmp_path / "site"
    done = run_cli(["publish", "--out", str(site), "--as-of", "2020-01-01"], db)
    assert done.exit_code == 0, done.stderr
    note = (tmp_path / "site.log" / "checkpoint").read_text(encoding="utf-8")
    assert note.startswith(f"{origin}\n200\n")
    assert (tmp_path / "site.log" / "tile" / "entries" / "000.p" / "200").exists()
    assert "published as tiles" in done.stderr


def test_a_witness_refuses_a_readable_key_and_a_malformed_log(tmp_path: Path) -> None:
    wkey = tmp_path / "w.key"
    assert run_cli(["witness", "keygen", "--name", "w", "-o", str(wkey)], "unused").exit_code == 0
    state = str(tmp_path / "state.sqlite")
    with pytest.raises(ConfigurationError, match="ORIGIN=VKEY"):
        cosigning.load_witness(str(wkey), ["no-equals-sign"], state)
    with pytest.raises(ConfigurationError, match="at least one"):
        cosigning.load_witness(str(wkey), [], state)
    wkey.chmod(0o644)
    with pytest.raises(ConfigurationError, match="readable by others"):
        cosigning.load_witness(str(wkey), ["o=k"], state)
    again = run_cli(["witness", "keygen", "--name", "w", "-o", str(wkey)], "unused")
    assert again.exit_code == 5 and "refusing to overwrite" in again.stderr
