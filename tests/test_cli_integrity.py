"""The tamper-evidence commands (issue 5): keygen, checkpoint, checkpoints, verify, prove, verify-proof.

Each test drives ``ledger`` in-process on a SQLite file, as a user would; the tampering test edits
the file with the sqlite3 module after dropping the append-only trigger, as an attacker would.
"""

from __future__ import annotations

import json
import sqlite3
import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli import cli

HOSP = "44860321X43010211A1001"
DOC = "110430105000061"

FIRST: list[dict[str, Any]] = [
    {
        "id": "T-S14",
        "kind": "technology.listed",
        "effective": "2018-11-19",
        "by": "湖南省卫生健康委员会",
        "catalog": "hunan",
        "code": "S14",
        "name": "人工关节置换技术",
        "class": "restricted",
        "version": "湖南省限制类医疗技术目录（2018版）",
    },
    {
        "id": "I-1",
        "kind": "institution.registered",
        "effective": "2003-09-18",
        "by": "长沙市卫生局",
        "institution": HOSP,
        "name": "湘江示范医院",
        "province": "湖南省",
        "city": "长沙市",
        "category": "医院",
        "level": "三级",
        "licensing_authority": "长沙市卫生健康委员会",
    },
]
SECOND: list[dict[str, Any]] = [
    {
        "id": "P-1",
        "kind": "physician.registered",
        "effective": "2010-03-01",
        "by": "长沙市卫生局",
        "physician": DOC,
        "name": "贺婉清",
        "institution": HOSP,
        "title": "主任医师",
    },
    {
        "id": "PEN-1",
        "kind": "penalty.imposed",
        "effective": "2022-08-02",
        "by": "湖南省卫生健康委员会",
        "institution": HOSP,
        "amount_yuan": 1500.50,
        "reason": "未按期整改",
    },
]

Run = Callable[..., Result]


def _jsonl(path: Path, lines: Sequence[Mapping[str, Any]]) -> str:
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in lines), encoding="utf-8")
    return str(path)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private data folder (default key and ledger paths land here), no LEDGER_* settings."""
    for name in ("LEDGER_DB", "LEDGER_KEY", "LEDGER_ORIGIN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture
def run(env: Path) -> Run:
    def invoke(*args: str, db: str | None = str(env / "ledger.sqlite")) -> Result:
        prefix = ["--db", db] if db is not None else []
        return CliRunner().invoke(cli, [*prefix, *args], catch_exceptions=False)

    return invoke


@pytest.fixture
def key(run: Run, env: Path) -> Path:
    path = env / "keys" / "ledger.key"
    result = run("keygen", "--name", "test-ledger", "-o", str(path), db=None)
    assert result.exit_code == 0, result.stderr
    return path


@pytest.fixture
def signed(run: Run, env: Path, key: Path) -> Path:
    """Two imports with a checkpoint after each; the first checkpoint also kept in a file."""
    assert run("import", _jsonl(env / "first.jsonl", FIRST)).exit_code == 0
    result = run("checkpoint", "--key", str(key), "-o", str(env / "cp1.note"))
    assert result.exit_code == 0, result.stderr
    assert run("import", _jsonl(env / "second.jsonl", SECOND)).exit_code == 0
    assert run("checkpoint", "--key", str(key)).exit_code == 0
    return env / "ledger.sqlite"


def test_keygen_writes_a_0600_key_and_prints_only_the_public_one(run: Run, env: Path) -> None:
    path = env / "k" / "signer.key"
    result = run("keygen", "--name", "my-ledger", "-o", str(path), db=None)
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    public = Path(f"{path}.pub").read_text().strip()
    assert result.stdout.strip() == public
    assert public.startswith("my-ledger+")
    assert "PRIVATE" not in result.stdout + result.stderr
    again = run("keygen", "-o", str(path), db=None)
    assert again.exit_code == 5
    assert "refusing to overwrite" in again.stderr


def test_default_key_lives_in_the_data_folder(run: Run, env: Path) -> None:
    assert run("keygen", db=None).exit_code == 0
    default = env / "data" / "medtech-ledger" / "checkpoint.key"
    assert stat.S_IMODE(default.stat().st_mode) == 0o600
    assert run("import", _jsonl(env / "first.jsonl", FIRST)).exit_code == 0
    result = run("checkpoint")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split("\n")[1] == "2"
    assert "\n\u2014 medtech-ledger " in result.stdout


def test_checkpoint_without_a_key_says_how_to_make_one(run: Run, env: Path) -> None:
    result = run("checkpoint", "--key", str(env / "nope.key"))
    assert result.exit_code == 5
    assert "ledger keygen" in result.stderr


def test_checkpoint_checkpoints_and_verify(run: Run, env: Path, key: Path, signed: Path) -> None:
    note = (env / "cp1.note").read_text()
    assert note.split("\n")[1] == "2"

    table = run("--lang", "en", "checkpoints")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["seq", "size", "time", "origin", "root"]
    assert [line.split()[:2] for line in lines[2:]] == [["1", "2"], ["2", "4"]]
    rows = json.loads(run("checkpoints", "--format", "json").stdout)
    assert rows[0]["note"] == note

    result = run("verify", "--key", f"{key}.pub", "--checkpoint", str(env / "cp1.note"))
    assert result.exit_code == 0, result.stderr
    assert "4 records, 3 of 3 checkpoints verified" in result.stdout
    assert "records/s" in result.stdout
    unsigned = run("verify")
    assert unsigned.exit_code == 0 and "signatures not checked" in unsigned.stdout


def test_verify_fails_naming_the_changed_position(run: Run, key: Path, signed: Path) -> None:
    con = sqlite3.connect(signed)
    con.execute("DROP TRIGGER stored_events_no_update")
    con.execute(
        "UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), '贺婉清', '贺婉青') AS BLOB) "
        "WHERE rowid = 3"
    )
    con.commit()
    con.close()
    result = run("verify", "--key", f"{key}.pub")
    assert result.exit_code == 9
    assert result.stderr.startswith("Error: ")
    assert "first disagreement at position 3 " in result.stderr
    assert "Traceback" not in result.stderr


def test_verify_with_a_stranger_key_fails_on_the_signature(run: Run, env: Path, signed: Path) -> None:
    assert run("keygen", "--name", "test-ledger", "-o", str(env / "other.key"), db=None).exit_code == 0
    result = run("verify", "--key", str(env / "other.key.pub"))
    assert result.exit_code == 10
    assert "no signature by a known key" in result.stderr


def test_prove_and_verify_proof_without_the_database(run: Run, env: Path, key: Path, signed: Path) -> None:
    proof = env / "PEN-1.proof.json"
    result = run("prove", "PEN-1", "-o", str(proof))
    assert result.exit_code == 0, result.stderr
    assert "position 4" in result.stderr
    for suffix in ("", "-wal", "-shm"):
        Path(f"{signed}{suffix}").unlink(missing_ok=True)

    gone = env / "nowhere" / "ledger.sqlite"
    for db in (None, str(gone)):  # with or without --db, the database is never opened
        result = run("verify-proof", str(proof), "--key", f"{key}.pub", db=db)
        assert result.exit_code == 0, result.stderr
        assert result.stdout.startswith("OK: decision PEN-1 is at position 4 (leaf 3)")
    assert not gone.parent.exists()
    assert not signed.exists()
    assert not (env / "data" / "medtech-ledger" / "ledger.sqlite").exists()


def test_verify_proof_rejects_a_tampered_bundle_or_the_wrong_key(run: Run, env: Path, key: Path, signed: Path) -> None:
    proof = env / "P-1.proof.json"
    assert run("prove", "P-1", "-o", str(proof)).exit_code == 0
    bundle = json.loads(proof.read_text())
    bundle["decision"]["name"] = "别人"
    tampered = env / "tampered.json"
    tampered.write_text(json.dumps(bundle, ensure_ascii=False))
    result = run("verify-proof", str(tampered), "--key", f"{key}.pub", db=None)
    assert result.exit_code == 9
    assert "decision shown differs from the recorded one in name" in result.stderr

    assert run("keygen", "--name", "test-ledger", "-o", str(env / "other.key"), db=None).exit_code == 0
    result = run("verify-proof", str(proof), "--key", str(env / "other.key.pub"), db=None)
    assert result.exit_code == 10
    assert "does not verify" in result.stderr

    assert run("verify-proof", str(proof), db=None).exit_code == 2  # --key is required


def test_prove_signs_a_checkpoint_only_when_given_a_key(run: Run, env: Path, key: Path) -> None:
    assert run("import", _jsonl(env / "first.jsonl", FIRST)).exit_code == 0
    result = run("prove", "I-1", "-o", str(env / "p.json"))
    assert result.exit_code == 4
    assert "ledger checkpoint" in result.stderr
    assert run("prove", "I-1", "-o", str(env / "p.json"), "--key", str(key)).exit_code == 0
    assert len(json.loads(run("checkpoints", "--format", "json").stdout)) == 1
    assert run("verify-proof", str(env / "p.json"), "--key", f"{key}.pub", db=None).exit_code == 0


# --- stored data never names code to run: topics are looked up, states checked ---------------

from urllib.parse import parse_qs, urlparse  # noqa: E402
from uuid import uuid4  # noqa: E402

from tests.conftest import run_cli  # noqa: E402

TAMPERS = {
    "topic": ("topic = 'this:s'", "topic = 'this:s'"),
    "msgpack": ("state = X'C1'", "state = decode('c1', 'hex')"),  # 0xC1 is never used by msgpack
    "fields": (  # msgpack of {"decision_id": "P-1"}: decodes, but is no physician.registered
        "state = X'81ab6465636973696f6e5f6964a3502d31'",
        "state = decode('81ab6465636973696f6e5f6964a3502d31', 'hex')",
    ),
}
"""How a stored record is spoiled: (SQLite, PostgreSQL) SQL of a SET clause or of the values."""
ZEN = "Beautiful is better than ugly"
"""What Python's ``this`` prints when imported: never, whatever a stored topic names."""


def _attack(url: str, backend: str, server: Any, sql: str) -> None:
    """Run one statement on the ledger's events table as someone with the file (or the server)."""
    if backend == "sqlite":
        con = sqlite3.connect(url)
        try:
            con.execute("DROP TRIGGER IF EXISTS stored_events_no_update")
            con.execute(sql.format(events="stored_events", position="rowid"))
            con.commit()
        finally:
            con.close()
        return
    schema = parse_qs(urlparse(url).query)["schema"][0]
    with server.connect() as con:
        con.execute(f'SET search_path TO "{schema}"')
        con.execute("DROP TRIGGER IF EXISTS ledger_events_append_only ON ledger_events")
        con.execute(sql.format(events="ledger_events", position="notification_id"))


def _spoilt(result: Result, position: int, decision: str | None = None) -> None:
    assert result.exit_code == 9, (result.exit_code, result.stdout, result.stderr)
    where = f"the record at position {position}" + (f" (decision {decision!r})" if decision else "")
    assert f"Error: {where} cannot be read: " in result.stderr
    assert "run `ledger verify`" in result.stderr
    assert "Traceback" not in result.stderr and ZEN not in result.stdout + result.stderr


@pytest.fixture
def two_files(env: Path, ledger_url: str) -> str:
    for name, lines in (("first", FIRST), ("second", SECOND)):
        result = run_cli(["import", _jsonl(env / f"{name}.jsonl", lines)], ledger_url)
        assert result.exit_code == 0, result.stderr
    return ledger_url


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_a_spoilt_record_is_a_clean_error_naming_its_position_in_every_command(
    tamper: str, two_files: str, backend: str, request: pytest.FixtureRequest, env: Path, key: Path
) -> None:
    """P-1 (position 3) rewritten after a checkpoint: every command that reads it says where."""
    url = two_files
    server = request.getfixturevalue("postgres_server") if backend == "postgres" else None
    assert run_cli(["checkpoint", "--key", str(key)], url).exit_code == 0
    position = json.loads(run_cli(["show", "P-1", "--format", "json"], url).stdout)[0]["_position"]
    sqlite_set, postgres_set = TAMPERS[tamper]
    _attack(
        url,
        backend,
        server,
        f"UPDATE {{events}} SET {sqlite_set if backend == 'sqlite' else postgres_set} WHERE {{position}} = {position}",
    )

    _spoilt(run_cli(["log"], url), position, "P-1")
    _spoilt(run_cli(["log", "--format", "json"], url), position, "P-1")
    _spoilt(run_cli(["show", "P-1"], url), position, "P-1")
    _spoilt(run_cli(["export"], url), position)
    _spoilt(run_cli(["rebuild"], url), position)
    _spoilt(run_cli(["trail", "--physician", DOC], url), position)  # the rebuild left the views empty
    result = run_cli(["verify", "--key", f"{key}.pub"], url)
    assert result.exit_code == 9 and f"first disagreement at position {position} " in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_a_planted_record_is_a_clean_error_when_the_views_catch_up(
    tamper: str, two_files: str, backend: str, request: pytest.FixtureRequest
) -> None:
    """With INSERT alone (the writer role's privilege), a record no import wrote: the views' catch-up
    (``project``, and every view command before it answers) stops on it, naming its position."""
    url = two_files
    server = request.getfixturevalue("postgres_server") if backend == "postgres" else None
    topic = "'this:s'" if tamper == "topic" else "'ledger.events:PhysicianRegistered'"
    sqlite_set, postgres_set = TAMPERS["msgpack" if tamper == "topic" else tamper]
    state = (sqlite_set if backend == "sqlite" else postgres_set).removeprefix("state = ")
    oid = uuid4().hex if backend == "sqlite" else str(uuid4())
    position = max(int(r["position"]) for r in json.loads(run_cli(["log", "--format", "json"], url).stdout)) + 1
    _attack(
        url,
        backend,
        server,
        f"INSERT INTO {{events}} ({{position}}, originator_id, originator_version, topic, "
        f"state) VALUES ({position}, '{oid}', 1, {topic}, {state})",
    )

    _spoilt(run_cli(["project"], url), position)
    _spoilt(run_cli(["trail", "--physician", DOC], url), position)
    _spoilt(run_cli(["catalog", "--province", "hunan"], url), position)
    _spoilt(run_cli(["export"], url), position)
    _spoilt(run_cli(["rebuild"], url), position)


def test_a_spoilt_topic_in_a_real_process_exits_9_without_a_traceback(run: Run, env: Path, signed: Path) -> None:
    """The ``ledger`` script itself, as a user runs it: exit code 9, one line on stderr, no Zen."""
    import subprocess
    import sys

    _attack(str(signed), "sqlite", None, "UPDATE {events} SET topic = 'this:s' WHERE {position} = 2")
    script = Path(sys.executable).with_name("ledger")
    for args in (["log"], ["show", "I-1"], ["export"], ["rebuild"]):
        done = subprocess.run(
            [str(script), "--db", str(signed), *args], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 9, (args, done.stderr)
        assert "Traceback" not in done.stderr and ZEN not in done.stdout + done.stderr
        assert "the record at position 2" in done.stderr
        assert "its topic 'this:s' is not a kind of decision in the ledger's vocabulary" in done.stderr


# --- issue 17: what no signature covers (--strict), and a log's identity --------------------


def test_verify_says_what_no_signature_covers_and_strict_fails_on_it(run: Run, env: Path, key: Path) -> None:
    """Findings 6 and 10: with no checkpoint (all deleted), or records after the last one, verify
    passed without a word."""
    assert run("import", _jsonl(env / "first.jsonl", FIRST)).exit_code == 0
    loose = run("verify", "--key", f"{key}.pub")
    assert loose.exit_code == 0, loose.stderr
    assert "Warning: no signed checkpoint: none of the 2 records is covered by a signature" in loose.stderr
    strict = run("verify", "--key", f"{key}.pub", "--strict")
    assert strict.exit_code == 9
    assert strict.stderr.startswith("Error: not every record is covered by a verified signature (--strict)")
    assert run("checkpoint", "--key", str(key)).exit_code == 0
    assert run("verify", "--key", f"{key}.pub", "--strict").exit_code == 0
    assert run("import", _jsonl(env / "second.jsonl", SECOND)).exit_code == 0
    after = run("verify", "--key", f"{key}.pub", "--strict")
    assert after.exit_code == 9
    assert "2 records (positions 3 on) are after the last verified checkpoint" in after.stderr
    assert run("verify", "--strict").exit_code == 9  # signatures not checked: nothing is covered
    assert "Traceback" not in after.stderr


def test_checkpoint_keeps_the_logs_key_and_origin_unless_told(run: Run, env: Path, key: Path, signed: Path) -> None:
    other = env / "keys" / "other.key"
    assert run("keygen", "--name", "test-ledger", "-o", str(other), db=None).exit_code == 0
    refused = run("checkpoint", "--key", str(other))
    assert refused.exit_code == 5
    assert "--rotate-key" in refused.stderr and "Traceback" not in refused.stderr
    assert run("checkpoint", "--key", str(other), "--rotate-key").exit_code == 0
    moved = run("checkpoint", "--key", str(other), "--origin", "example.org/ledger")
    assert moved.exit_code == 5 and "--new-origin" in moved.stderr
    bad = run("checkpoint", "--key", str(other), "--origin", "example.org/a ledger", "--new-origin")
    assert bad.exit_code == 5 and "white space" in bad.stderr
    note = run("checkpoint", "--key", str(other), "--origin", "example.org/ledger", "--new-origin")
    assert note.exit_code == 0 and note.stdout.startswith("example.org/ledger\n4\n")
    both = run("verify", "--key", f"{key}.pub", "--key", f"{other}.pub", "--strict")
    assert both.exit_code == 0, both.stderr
    assert "4 records, 4 of 4 checkpoints verified" in both.stdout


def test_an_altered_checkpoint_row_fails_verify_without_a_traceback(run: Run, key: Path, signed: Path) -> None:
    con = sqlite3.connect(signed)
    con.execute("DROP TRIGGER ledger_checkpoints_no_update")
    con.execute("UPDATE ledger_checkpoints SET size = 'abc' WHERE seq = 1")
    con.commit()
    con.close()
    result = run("verify", "--key", f"{key}.pub")
    assert result.exit_code == 9
    assert "checkpoint #1: its size 'abc' is not a number" in result.stderr
    assert "Traceback" not in result.stderr
    listed = run("checkpoints")
    assert listed.exit_code == 0 and "Traceback" not in listed.stderr
