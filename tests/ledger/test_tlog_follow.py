"""The ledger's log written as tlog-tiles, and followed into an exact, read-only copy.

In-process on SQLite files: the national ledger is the demo, split so that the log grows between
two publications. The end-to-end story with processes is ``tests/test_transparency_story.py``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ledger import integrity, merkle
from ledger.application import LedgerApplication
from ledger.checkpoints import open_note
from ledger.errors import ConfigurationError, ForkDetected, IntegrityError, SignatureError
from ledger.follow import Trust, evidence, follow
from ledger.integrity import readahead, store, tiles_out
from ledger.integrity.index import derived_fields
from ledger.integrity.leaves import split_leaf
from ledger.integrity.signing import unverified
from ledger.tiles import TILE_WIDTH, TileError, TileReader, tile_path
from ledger.transcoder import MsgpackTranscoder
from tests.conftest import run_cli


@dataclass
class National:
    db: str
    key: Path
    rest: Path
    tmp: Path

    def vkey(self) -> str:
        return Path(f"{self.key}.pub").read_text(encoding="utf-8").strip()

    def grow(self) -> None:
        assert run_cli(["import", str(self.rest)], self.db).exit_code == 0
        assert run_cli(["checkpoint", "--key", str(self.key)], self.db).exit_code == 0


@pytest.fixture(scope="module")
def demo_lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    db = str(tmp_path_factory.mktemp("demo") / "demo.sqlite")
    assert run_cli(["demo"], db).exit_code == 0
    return run_cli(["export"], db).stdout.splitlines(keepends=True)


@pytest.fixture
def national(tmp_path: Path, demo_lines: list[str]) -> National:
    """The demo's first 200 decisions, signed; the rest waiting in a file."""
    (tmp_path / "first.jsonl").write_text("".join(demo_lines[:200]), encoding="utf-8")
    (tmp_path / "rest.jsonl").write_text("".join(demo_lines[200:]), encoding="utf-8")
    db, key = str(tmp_path / "national.sqlite"), tmp_path / "national.key"
    assert run_cli(["import", str(tmp_path / "first.jsonl")], db).exit_code == 0
    assert run_cli(["keygen", "--name", "national", "-o", str(key)], db).exit_code == 0
    assert run_cli(["checkpoint", "--key", str(key)], db).exit_code == 0
    return National(db, key, tmp_path / "rest.jsonl", tmp_path)


@pytest.fixture
def copy(tmp_path: Path) -> Iterator[LedgerApplication]:
    app = LedgerApplication.open(str(tmp_path / "copy.sqlite"))
    yield app
    app.close()


def publish(national: National, folder: Path) -> tiles_out.Published:
    app = LedgerApplication.open(national.db)
    try:
        return tiles_out.write_tiles(app, folder)
    finally:
        app.close()


def test_the_tiles_lead_to_the_signed_root_and_hold_every_record(national: National, tmp_path: Path) -> None:
    out = tmp_path / "log"
    done = publish(national, out)
    note = (out / "checkpoint").read_text(encoding="utf-8")
    checkpoint, _ = open_note(note, [national.vkey()])
    assert (done.old_size, done.size, checkpoint.size) == (0, 200, 200)
    reader = TileReader(lambda path: (out / path).read_bytes(), checkpoint.size)
    assert reader.root() == checkpoint.root
    entries = [e for k in range(-(-checkpoint.size // TILE_WIDTH)) for e in reader.entries(k)]
    assert len(entries) == 200
    assert merkle.root_from_hashes([merkle.leaf_hash(e) for e in entries]) == checkpoint.root
    assert not list(out.rglob(".*.tmp"))


def test_publishing_again_writes_only_new_tiles_and_never_a_full_one(
    national: National, demo_lines: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "log"
    publish(national, out)
    assert publish(national, out).tiles == 0
    for part, end in (("a", 260), ("b", len(demo_lines))):  # past a full tile, then past it again
        national.rest = tmp_path / f"{part}.jsonl"
        national.rest.write_text(
            "".join(demo_lines[len(demo_lines) - (266 - 200) + (0 if part == "a" else 60) : end]), encoding="utf-8"
        )
        national.grow()
        if part == "a":
            done = publish(national, out)
            assert (done.old_size, done.size) == (200, 260)
            full = out / tile_path(0, 0)
            before = full.stat().st_mtime_ns, full.read_bytes()
    done = publish(national, out)
    assert (done.old_size, done.size) == (260, 266)
    assert done.tiles == 1 and done.bundles == 1  # only the new partial tile and bundle of leaves 256..265
    assert (full.stat().st_mtime_ns, full.read_bytes()) == before
    for width in (4, 10):
        assert (out / tile_path(0, 1, width)).exists()
    assert unverified((out / "checkpoint").read_text(encoding="utf-8")).size == 266


def test_the_checkpoint_is_written_after_its_tiles(
    national: National, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    real = tiles_out.write_atomically

    def recording(path: Path, data: bytes) -> None:
        order.append(path.name)
        real(path, data)

    monkeypatch.setattr(tiles_out, "write_atomically", recording)
    publish(national, tmp_path / "log")
    assert order[-1] == "checkpoint" and order.count("checkpoint") == 1 and len(order) > 1


def test_no_checkpoint_no_tiles(tmp_path: Path) -> None:
    app = LedgerApplication.open(str(tmp_path / "empty.sqlite"))
    try:
        with pytest.raises(ConfigurationError, match="no signed checkpoint"):
            tiles_out.write_tiles(app, tmp_path / "log")
    finally:
        app.close()
    assert not (tmp_path / "log" / "checkpoint").exists()


def test_a_copy_is_exact_verifies_and_grows(national: National, copy: LedgerApplication, tmp_path: Path) -> None:
    out, trust = tmp_path / "log", Trust([national.vkey()])
    publish(national, out)
    first = follow(copy, str(out), trust)
    assert (first.old_size, first.size, first.stored) == (0, 200, 200)
    assert follow(copy, str(out), trust).stored == 0
    national.grow()
    publish(national, out)
    assert follow(copy, str(out), trust).stored == 66
    copy_db = str(tmp_path / "copy.sqlite")
    for command in (["export"], ["log", "--format", "json"], ["trail", "--province", "hunan"]):
        assert run_cli(command, copy_db).stdout == run_cli(command, national.db).stdout
    verified = run_cli(["verify", "--key", f"{national.key}.pub", "--strict"], copy_db)
    assert verified.exit_code == 0, verified.stderr
    assert "2 of 2 checkpoints verified" in verified.stdout
    with sqlite3.connect(copy_db) as db, sqlite3.connect(national.db) as source:
        query = "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid"
        assert db.execute(query).fetchall() == source.execute(query).fetchall()
        index = "SELECT * FROM ledger_decisions ORDER BY position"
        assert db.execute(index).fetchall() == source.execute(index).fetchall()


def test_a_copy_refuses_local_writes(national: National, copy: LedgerApplication, tmp_path: Path) -> None:
    publish(national, tmp_path / "log")
    follow(copy, str(tmp_path / "log"), Trust([national.vkey()]))
    refused = run_cli(["import", str(national.rest)], str(tmp_path / "copy.sqlite"))
    assert refused.exit_code == 5 and "read-only copy" in refused.stderr


def test_only_an_empty_ledger_becomes_a_copy(national: National, tmp_path: Path) -> None:
    publish(national, tmp_path / "log")
    own = LedgerApplication.open(national.db)
    try:
        with pytest.raises(ConfigurationError, match="of its own"):
            follow(own, str(tmp_path / "log"), Trust([national.vkey()]))
    finally:
        own.close()


def test_another_key_is_refused(national: National, copy: LedgerApplication, tmp_path: Path) -> None:
    publish(national, tmp_path / "log")
    assert run_cli(["keygen", "--name", "other", "-o", str(tmp_path / "other.key")], national.db).exit_code == 0
    other = (tmp_path / "other.key.pub").read_text(encoding="utf-8").strip()
    with pytest.raises(SignatureError):
        follow(copy, str(tmp_path / "log"), Trust([other]))
    with pytest.raises(ConfigurationError, match="--key"):
        follow(copy, str(tmp_path / "log"), Trust())


def test_an_altered_entry_is_refused_and_nothing_stored(
    national: National, copy: LedgerApplication, tmp_path: Path
) -> None:
    out = tmp_path / "log"
    publish(national, out)
    bundle = out / tile_path("entries", 0, 200)
    data = bytearray(bundle.read_bytes())
    data[-1] ^= 1
    bundle.write_bytes(bytes(data))
    with pytest.raises(TileError, match="does not hash to its leaf"):
        follow(copy, str(out), Trust([national.vkey()]))
    assert run_cli(["export"], str(tmp_path / "copy.sqlite")).stdout == ""


def test_tiles_that_do_not_lead_to_the_root_store_nothing(
    national: National, copy: LedgerApplication, tmp_path: Path
) -> None:
    """A level-0 tile and bundle swapped together for other records still fail the root check."""
    out = tmp_path / "log"
    publish(national, out)
    bundle, tile = out / tile_path("entries", 0, 200), out / tile_path(0, 0, 200)
    entries = TileReader(lambda p: (out / p).read_bytes(), 200).entries(0)
    entries[0], entries[1] = entries[1], entries[0]
    from ledger.tiles import bundle as make_bundle

    bundle.write_bytes(make_bundle(entries))
    tile.write_bytes(b"".join(merkle.leaf_hash(e) for e in entries) + tile.read_bytes()[len(entries) * 32 :])
    with pytest.raises(IntegrityError, match="do not lead to its signed root"):
        follow(copy, str(out), Trust([national.vkey()]))
    assert run_cli(["export"], str(tmp_path / "copy.sqlite")).stdout == ""
    assert evidence(copy) == []  # a lying server is no evidence against the log


def _fork(national: National, demo_lines: list[str], size: int) -> Path:
    """The national log's history rewritten (its first note changed) up to ``size`` records,
    signed with the national key under the national origin, published into a folder."""
    origin = json.loads(run_cli(["checkpoints", "--format", "json"], national.db).stdout)[-1]["origin"]
    forked, lines = national.tmp / "forked.jsonl", list(demo_lines[:size])
    lines[0] = lines[0].replace('"note":"', '"note":"(rewritten) ', 1)
    forked.write_text("".join(lines), encoding="utf-8")
    db = str(national.tmp / "forked.sqlite")
    assert run_cli(["import", str(forked)], db).exit_code == 0
    assert run_cli(["checkpoint", "--key", str(national.key), "--origin", origin], db).exit_code == 0
    app = LedgerApplication.open(db)
    try:
        tiles_out.write_tiles(app, national.tmp / "forked-log")
    finally:
        app.close()
    return national.tmp / "forked-log"


@pytest.mark.parametrize(
    ("size", "reason"),
    [(200, "size 200 was signed with another root"), (230, "not consistent"), (150, "shrank from 200 to 150")],
)
def test_a_fork_is_caught_with_its_evidence(
    national: National, copy: LedgerApplication, demo_lines: list[str], tmp_path: Path, size: int, reason: str
) -> None:
    publish(national, tmp_path / "log")
    trust = Trust([national.vkey()])
    follow(copy, str(tmp_path / "log"), trust)
    forked = _fork(national, demo_lines, size)
    with pytest.raises(ForkDetected, match=reason) as caught:
        follow(copy, str(forked), trust, evidence_dir=tmp_path / "evidence")
    assert caught.value.exit_code == 12
    (kept,) = evidence(copy)
    assert reason in kept["reason"]
    assert unverified(kept["old_note"]).size == 200 and unverified(kept["new_note"]).size == size
    assert bool(kept["proof"]) == (size == 230)
    (folder,) = (tmp_path / "evidence").iterdir()
    assert (folder / "new.checkpoint").read_text(encoding="utf-8") == kept["new_note"]
    assert follow(copy, str(tmp_path / "log"), trust).size == 200  # the copy is as it was


def test_on_either_database_a_copy_is_exact(
    new_ledger_url: Callable[[], str], demo_lines: list[str], tmp_path: Path
) -> None:
    """Tiles written from, and a copy followed into, SQLite or PostgreSQL (positions kept)."""
    source, target = new_ledger_url(), new_ledger_url()
    (tmp_path / "all.jsonl").write_text("".join(demo_lines[:120]), encoding="utf-8")
    assert run_cli(["import", str(tmp_path / "all.jsonl")], source).exit_code == 0
    assert run_cli(["keygen", "--name", "n", "-o", str(tmp_path / "n.key")], source).exit_code == 0
    assert run_cli(["checkpoint", "--key", str(tmp_path / "n.key")], source).exit_code == 0
    assert run_cli(["tiles", "--out", str(tmp_path / "log")], source).exit_code == 0
    done = run_cli(["follow", str(tmp_path / "log"), "--key", str(tmp_path / "n.key.pub")], target)
    assert done.exit_code == 0, done.stderr
    assert "120 records verified (120 new)" in done.stdout
    assert run_cli(["export"], target).stdout == run_cli(["export"], source).stdout
    assert run_cli(["verify", "--key", str(tmp_path / "n.key.pub"), "--strict"], target).exit_code == 0


def test_another_history_is_never_published_over_the_tiles(
    national: National, demo_lines: list[str], tmp_path: Path
) -> None:
    publish(national, tmp_path / "log")
    forked = _fork(national, demo_lines, 230)
    before = {p: p.read_bytes() for p in (tmp_path / "log").rglob("*") if p.is_file()}
    app = LedgerApplication.open(str(national.tmp / "forked.sqlite"))
    try:
        with pytest.raises(IntegrityError, match="another history"):
            tiles_out.write_tiles(app, tmp_path / "log")
    finally:
        app.close()
    assert {p: p.read_bytes() for p in (tmp_path / "log").rglob("*") if p.is_file()} == before
    assert (forked / "checkpoint").exists()


@pytest.mark.parametrize("helper", ["none", "deriving ahead", "dead"])
def test_a_copy_in_small_batches_holds_the_source_tree_too(
    new_ledger_url: Callable[[], str],
    demo_lines: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    helper: str,
) -> None:
    """Followed 16 records a batch (so corrections look their targets up in storage), with the
    index fields derived here, by a helper process ahead, or by a helper that dies at once: the
    copy holds the source's records, index rows and Merkle tree, without syncing it again."""
    source = str(tmp_path / "source.sqlite")
    (tmp_path / "all.jsonl").write_text("".join(demo_lines), encoding="utf-8")
    assert run_cli(["import", str(tmp_path / "all.jsonl")], source).exit_code == 0
    assert run_cli(["keygen", "--name", "n", "-o", str(tmp_path / "n.key")], source).exit_code == 0
    assert run_cli(["checkpoint", "--key", str(tmp_path / "n.key")], source).exit_code == 0
    assert run_cli(["tiles", "--out", str(tmp_path / "log")], source).exit_code == 0
    monkeypatch.setattr(readahead, "DERIVE_MIN", 10**9 if helper == "none" else 0)
    monkeypatch.setattr(readahead, "_cores", lambda: 2)
    if helper == "dead":
        monkeypatch.setattr(readahead, "_HELPER", "import sys; sys.exit(3)")
    given: list[bool] = []
    result = readahead.DeriveAhead.result
    monkeypatch.setattr(readahead.DeriveAhead, "result", lambda self: given.append(bool(r := result(self))) or r)
    synced: list[int] = []  # leaves a sync added after the copy: none, the tree went in with the records
    extend = store.extend_tree
    monkeypatch.setattr(store, "extend_tree", lambda c, log, f, p, h: synced.append(len(h)) or extend(c, log, f, p, h))
    target = new_ledger_url()
    app = LedgerApplication.open(target)
    try:
        done = follow(app, str(tmp_path / "log"), Trust([(tmp_path / "n.key.pub").read_text().strip()]), batch=16)
        copied_root = integrity.tree_state(app).root
    finally:
        app.close()
    assert done.stored == len(demo_lines)
    assert given == {"none": [], "deriving ahead": [True] * 2, "dead": [False] * 2}[helper]
    assert synced == []
    source_app = LedgerApplication.open(source)
    try:
        assert copied_root == integrity.tree_state(source_app).root
    finally:
        source_app.close()
    for command in (["export"], ["log", "--format", "json"], ["trail", "--province", "hunan"]):
        assert run_cli(command, target).stdout == run_cli(command, source).stdout
    checked = run_cli(["verify", "--key", str(tmp_path / "n.key.pub"), "--strict"], target)
    assert checked.exit_code == 0, checked.stderr


def test_the_helper_derives_what_this_process_derives_and_nothing_it_cannot(
    national: National, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(national, tmp_path / "log")
    entries = TileReader(lambda p: (tmp_path / "log" / p).read_bytes(), 200).entries(0)
    decode = MsgpackTranscoder().decode
    expected = [list(derived_fields(*split_leaf(e)[3:], decode)) for e in entries]  # as the helper sends them
    monkeypatch.setattr(readahead, "_cores", lambda: 2)
    app = LedgerApplication.open(str(tmp_path / "x.sqlite"))
    ahead = readahead.DeriveAhead.start(app, readahead.DERIVE_MIN)
    assert ahead is not None
    try:
        for bundle in (entries, [b"not a leaf"], entries[:3]):
            ahead.submit(bundle)
        assert ahead.result() == expected
        assert ahead.result() is None  # derived here, where the failure is named
        assert ahead.result() == expected[:3]
    finally:
        ahead.close()
        app.close()
    assert readahead.DeriveAhead.start(app, readahead.DERIVE_MIN - 1) is None  # too few to pay for a process


@pytest.mark.parametrize(
    "damage", [None, "UPDATE stored_events SET state = CAST(state || x'00' AS BLOB) WHERE rowid = 77"]
)
def test_helper_processes_write_the_same_bundles_or_leave_a_bad_one_to_be_named(
    national: National, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str | None
) -> None:
    """Entry bundles written by helper processes are the bytes this process writes; a bundle whose
    records no longer hash to the tree's leaves is left to this process, which refuses it by name."""
    if damage:
        with sqlite3.connect(national.db) as db:
            db.execute("DROP TRIGGER IF EXISTS stored_events_no_update")
            db.execute(damage)
    monkeypatch.setattr(readahead, "_cores", lambda: 2)
    helped_with: list[set[int]] = []
    wait = tiles_out.BundleHelpers.wait
    monkeypatch.setattr(tiles_out.BundleHelpers, "wait", lambda self: helped_with.append(got := wait(self)) or got)
    written: dict[int, dict[str, bytes] | str] = {}
    for helped in (0, 10**9):
        monkeypatch.setattr(tiles_out, "HELPED_MIN", helped)
        out = tmp_path / f"log-{helped}"
        try:
            publish(national, out)
        except IntegrityError as e:
            written[helped] = str(e)
        else:
            written[helped] = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert written[0] == written[10**9]
    if damage:
        assert "the records of tile/entries/000.p/200 do not hash to the tree's leaves" in str(written[0])
        assert helped_with == [set()]  # the helper left it
    else:
        assert "tile/entries/000.p/200" in written[0] and "checkpoint" in written[0]
        assert helped_with == [{0}]  # the helper wrote it
