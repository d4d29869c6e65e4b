"""Following another ledger: a local, read-only copy of a log published as tlog-tiles.

``follow`` fetches the source's ``checkpoint``, believes it only if the configured log key signed
it (and the witness policy's quorum cosigned it), and holds it to the last checkpoint it verified
before: the size never goes down, the same size has the same root, and a consistency proof built
from the new tiles leads from the old root to the new one. Then it reads the new entries (each
checked against its level-0 hash), rebuilds the tree over them in memory and compares its root with
the checkpoint's *before* committing, and stores each record exactly as the source did (same
position, subject id, version, topic and state bytes) with the decision-index row the import
derives (``IndexDeriver``), so every view, trail, report and ``verify`` works on the copy. The
verified note is kept among the copy's checkpoints: ``verify --key <the source's key>`` checks the
copy against it, and the copy's own published tiles carry it on to whoever follows the copy.

Why the evidence: a log that shows two histories has proved that it lied; the two signed
checkpoints (and the proof that failed) are what a province takes to whoever oversees the log.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger import merkle
from ledger.checkpoints import Checkpoint, VerifierKey, b64encode, open_note
from ledger.errors import ConfigurationError, ForkDetected, IntegrityError, LedgerError
from ledger.importer import no_cycle_collection
from ledger.integrity.index import UNKNOWN, IndexDeriver
from ledger.integrity.leaves import split_leaf
from ledger.integrity.readahead import DeriveAhead, Derived
from ledger.integrity.signing import read_checkpoints, unverified
from ledger.integrity.store import LEAF_COLUMNS, NODE_COLUMNS, read_tree, save_tree, sync, tree_rows
from ledger.integrity.tables import BATCH, LEAVES, NODES, Log, open_log
from ledger.integrity.tiles_out import FOLLOWED, ensure_tables, followed_notes
from ledger.merkle import Frontier
from ledger.policy import Policy, QuorumMissing
from ledger.sql import Cursor, Database
from ledger.tiles import TILE_WIDTH, Fetch, TileError, TileReader

if TYPE_CHECKING:
    from ledger.application import LedgerApplication

FOLLOW = "ledger_follow"
EVIDENCE = "ledger_follow_evidence"
FETCH_TIMEOUT = 30.0
MAX_FILE = 1 << 24
"""No tile, bundle or checkpoint is near this (a full bundle of the largest entries is 16 MiB)."""


@dataclass(frozen=True)
class Trust:
    """What a followed checkpoint must carry: a signature by one of ``keys`` and/or ``policy``'s quorum."""

    keys: Sequence[str | VerifierKey] = ()
    policy: Policy | None = None

    def check(self) -> None:
        if not self.keys and self.policy is None:
            raise ConfigurationError("following needs the log's verifier key (--key) or a policy (--policy)")

    def accept(self, note: bytes) -> tuple[Checkpoint, list[str], QuorumMissing | None]:
        """The checkpoint if the log signed it, the witnesses that cosigned it, and why it misses
        the policy's quorum if it does: a checkpoint the log signed is evidence against the log
        whatever the witnesses said, so the quorum is judged after the consistency checks."""
        self.check()
        keys: list[str | VerifierKey] = list(self.keys)
        if not keys and self.policy is not None:
            keys = [key for key, _ in self.policy.logs.values()]
        checkpoint, _ = open_note(note, keys)
        if self.policy is None:
            return checkpoint, [], None
        try:
            return checkpoint, self.policy.accept(note)[1], None
        except QuorumMissing as e:
            return checkpoint, [], e


def fetcher(source: str, timeout: float = FETCH_TIMEOUT) -> Fetch:
    """Reads a published log's files from a URL prefix or a folder; a missing file is a ``TileError``."""
    if source.startswith(("http://", "https://")):
        base = source.rstrip("/") + "/"

        def fetch_url(path: str) -> bytes:
            try:
                with urllib.request.urlopen(base + path, timeout=timeout) as response:
                    return bytes(response.read(MAX_FILE))
            except urllib.error.HTTPError as e:
                raise TileError(f"{base}{path}: HTTP {e.code}") from None
            except (urllib.error.URLError, OSError) as e:
                raise TileError(f"cannot fetch {base}{path}: {getattr(e, 'reason', e)}") from None

        return fetch_url
    folder = Path(source)
    if not folder.is_dir():
        raise ConfigurationError(f"{source} is neither an http(s) URL nor a folder of tiles")

    def fetch_file(path: str) -> bytes:
        try:
            return (folder / path).read_bytes()
        except OSError as e:
            raise TileError(f"cannot read {folder / path}: {e.strerror or e}") from None

    return fetch_file


@dataclass
class Followed:
    """What one ``follow`` did: the verified sizes before and after, the records stored."""

    origin: str
    old_size: int
    size: int
    stored: int
    witnesses: list[str] = field(default_factory=list)


def _create_tables(log: Log) -> None:
    ensure_tables(log)
    with log.db.transaction() as c:
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {log.t(FOLLOW)} (id INTEGER PRIMARY KEY CHECK (id = 1), "
            "source TEXT NOT NULL, origin TEXT NOT NULL)"
        )
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {log.t(EVIDENCE)} (seen TEXT NOT NULL, reason TEXT NOT NULL, "
            "old_note TEXT NOT NULL, new_note TEXT NOT NULL, proof TEXT NOT NULL)"
        )


def followed_origin(app: LedgerApplication) -> str | None:
    """The origin this ledger follows, or None for a ledger of its own. Reads only (``open_log``
    would create the integrity tables, a write that must not come before an import's own)."""
    db = Database(app.store)
    with db.transaction(write=False) as c:
        if not db.has_table(c, FOLLOW):  # this ledger never followed anything
            return None
        row = c.execute(f"SELECT origin FROM {db.table(FOLLOW)} WHERE id = 1").fetchone()
    return None if row is None else str(row[0])


def refuse_if_followed(app: LedgerApplication) -> None:
    """A followed copy holds another log's records only: a local write would fork it from its source."""
    origin = followed_origin(app)
    if origin is not None:
        raise ConfigurationError(
            f"this ledger is a read-only copy of {origin!r} (`ledger follow`): record decisions in the ledger "
            "it follows"
        )


def verified_notes(app: LedgerApplication) -> list[str]:
    """The checkpoints this copy verified, oldest first, for ``verify`` to hold storage to; none
    in a ledger that never followed another. Reads only: ``verify`` writes nothing of its own."""
    db = Database(app.store)
    with db.transaction(write=False) as c:
        if not db.has_table(c, FOLLOWED):  # this ledger never followed anything
            return []
        rows = c.execute(f"SELECT note FROM {db.table(FOLLOWED)} ORDER BY seq").fetchall()
    return [str(row[0]) for row in rows]


def evidence(app: LedgerApplication) -> list[dict[str, str]]:
    """The inconsistencies ``follow`` found, oldest first."""
    log = open_log(app)
    _create_tables(log)
    with log.db.transaction(write=False) as c:
        rows = c.execute(f"SELECT seen, reason, old_note, new_note, proof FROM {log.t(EVIDENCE)}").fetchall()
    names = ("seen", "reason", "old_note", "new_note", "proof")
    return [dict(zip(names, map(str, row), strict=True)) for row in rows]


def follow(
    app: LedgerApplication,
    source: str,
    trust: Trust,
    *,
    fetch: Fetch | None = None,
    evidence_dir: str | Path | None = None,
    batch: int = BATCH,
) -> Followed:
    """Bring the copy up to the source's latest checkpoint (see the module); ``ForkDetected`` on a fork."""
    trust.check()
    fetch = fetch or fetcher(source)
    note = fetch("checkpoint")
    checkpoint, witnesses, missing = trust.accept(note)
    log = open_log(app)
    _create_tables(log)
    state = sync(app)
    with log.db.transaction(write=False) as c:
        row = c.execute(f"SELECT origin FROM {log.t(FOLLOW)} WHERE id = 1").fetchone()
        own = read_checkpoints(c, log)
        stored = followed_notes(c, log)
    if row is None and (state.size or own or stored):
        raise ConfigurationError("this ledger holds records or checkpoints of its own: follow into an empty ledger")
    if row is not None and row[0] != checkpoint.origin:
        raise ConfigurationError(f"this ledger follows {row[0]!r}, not {checkpoint.origin!r}")
    old_note = stored[-1] if stored else ""
    old = unverified(old_note) if stored else None
    old_size, old_root = (old.size, old.root) if old else (0, merkle.EMPTY_ROOT)
    reader = TileReader(fetch, checkpoint.size)
    proof: list[bytes] = []

    def fork(reason: str) -> ForkDetected:
        kept = _keep_evidence(log, reason, old_note, note.decode("utf-8", "replace"), proof, evidence_dir)
        return ForkDetected(f"{checkpoint.origin}: {reason}; the evidence is kept in {kept}")

    if checkpoint.size < old_size:
        raise fork(f"the log shrank from {old_size} to {checkpoint.size} records")
    if checkpoint.size == old_size:
        if checkpoint.root != old_root:
            raise fork(f"size {old_size} was signed with another root")
        return Followed(checkpoint.origin, old_size, old_size, 0, witnesses)
    if reader.root() != checkpoint.root:  # a broken or lying server, not the log: no evidence against it
        raise IntegrityError(f"the tiles served for {checkpoint.origin} do not lead to its signed root")
    if old_size:
        proof = merkle.consistency_proof_from(reader.node, old_size, checkpoint.size)
        if not merkle.verify_consistency(old_size, checkpoint.size, old_root, checkpoint.root, proof):
            raise fork(f"the checkpoint of {checkpoint.size} records is not consistent with the one of {old_size}")
    if missing is not None:
        raise missing
    stored_count = _store(app, log, reader, checkpoint, batch)
    _keep_checkpoint(log, source, checkpoint, note)
    return Followed(checkpoint.origin, old_size, checkpoint.size, stored_count, witnesses)


class _SessionCursor(Cursor):
    """A ``Cursor`` through a write session: its reads see what the session wrote, and on SQLite
    each statement waits for a write the session has in progress (``WriteSession.c``)."""

    def __init__(self, session: Any, db: Database) -> None:
        super().__init__(None, db.dialect, db.schema)
        self.session = session

    @property
    def raw(self) -> Any:
        return self.session.c

    @raw.setter
    def raw(self, _: Any) -> None:
        """``Cursor.__init__`` sets it; the session's own cursor is the one used."""


class _Deriver(IndexDeriver):
    """``IndexDeriver`` that also knows the rows derived but not yet handed to storage."""

    def __init__(self, c: Any, log: Log, app: LedgerApplication) -> None:
        super().__init__(c, log, app)
        self.pending: dict[str, Any] = {}  # decision id -> jurisdiction
        self.pending_subjects: dict[str, Any] = {}  # institution -> jurisdiction of its registration

    def _target_jurisdiction(self, target: str) -> Any:
        if target in self.pending:
            return self.pending[target]
        return super()._target_jurisdiction(target)

    def _jurisdiction(self, institution: str) -> Any:
        if institution in self.pending_subjects:
            return self.pending_subjects[institution]
        return super()._jurisdiction(institution)


def _store(app: LedgerApplication, log: Log, reader: TileReader, checkpoint: Checkpoint, batch: int) -> int:
    """Store the records from the local tree's end to the checkpoint's size, with the tree over
    them (the nodes the tiles gave, each entry checked against its leaf), in one transaction
    committed only if that tree has the checkpoint's root."""
    with no_cycle_collection(), app.store.write() as session, ExitStack() as helpers:
        c = _SessionCursor(session, log.db)
        state, frontier = read_tree(c, log, lock=True)
        start, position = state.size, state.last_position + 1
        ahead = DeriveAhead.start(app, checkpoint.size - start)
        if ahead is not None:
            helpers.callback(ahead.close)
        derive = _Deriver(c, log, app)
        events: list[tuple[str, int, str, bytes]] = []
        rows: list[tuple[Any, ...]] = []
        hashes: list[bytes] = []
        for k, entries, derived in _bundles(reader, start, checkpoint.size, ahead):
            skip = max(0, start - k * TILE_WIDTH)
            hashes += [reader.node(0, k * TILE_WIDTH + i) for i in range(skip, len(entries))]
            for i in range(skip, len(entries)):
                fields = None if derived is None else derived[i]
                event, row = _record(derive, entries[i], k * TILE_WIDTH + i, position, fields)
                events.append(event)
                rows.append(row)
                position += 1
            if len(events) >= batch:
                _append(session, log, frontier, events, rows, hashes, position)
                events, rows, hashes = [], [], []
                derive.pending.clear()
                derive.pending_subjects.clear()
        _append(session, log, frontier, events, rows, hashes, position)
        if frontier.root() != checkpoint.root:
            raise IntegrityError(
                f"the entries served for {checkpoint.origin} do not hash to its checkpoint's root: nothing was stored"
            )
        save_tree(c, log, frontier, position - 1)
    sync(app)  # nothing left to add: it checks the last record against its leaf
    return checkpoint.size - start


AHEAD = 8
"""Entry bundles a ``DeriveAhead`` helper is given before the first is stored (memory stays flat)."""


def _bundles(
    reader: TileReader, start: int, size: int, ahead: DeriveAhead | None
) -> Iterator[tuple[int, list[bytes], Derived | None]]:
    """Each entry bundle from the one holding leaf ``start`` to the end of a tree of ``size``
    leaves, with its entries' ``derived_fields`` where the helper gave them (else None)."""
    window: deque[tuple[int, list[bytes]]] = deque()
    for k in range(start // TILE_WIDTH, -(-size // TILE_WIDTH)):
        entries = reader.entries(k)
        if ahead is None:
            yield k, entries, None
            continue
        ahead.submit(entries)
        window.append((k, entries))
        if len(window) > AHEAD:
            yield *window.popleft(), ahead.result()
    while window and ahead is not None:
        yield *window.popleft(), ahead.result()


def _append(
    session: Any,
    log: Log,
    frontier: Frontier,
    events: list[tuple[str, int, str, bytes]],
    rows: list[Any],
    hashes: list[bytes],
    after: int,
) -> None:
    """Hand a batch to storage with the tree's rows over it, which must give the records the
    positions they had (``after`` is the position after the batch's last): PostgreSQL, say, may
    give others. On SQLite all of it is written while the next batch is read."""
    if not events:
        return
    first = after - len(events)
    nodes, leaves = tree_rows(frontier, range(first, after), hashes)
    tree = ((log.t(NODES), *NODE_COLUMNS, nodes), (log.t(LEAVES), *LEAF_COLUMNS, leaves))
    given = session.append_staged(events, rows, tree)
    if given[0] != first or given[-1] != after - 1:
        raise IntegrityError(
            f"storage gave positions {given[0]}..{given[-1]} to the records at {first}..{after - 1}: "
            "the copy would not be exact; nothing was stored"
        )


def _record(derive: _Deriver, entry: bytes, index: int, position: int, fields: Sequence[Any] | None) -> tuple[Any, Any]:
    """The stored record and decision-index row of one entry (from its ``derived_fields`` where
    they are given); refused unless it is the next position."""
    try:
        leaf_position, oid, version, topic, state = split_leaf(entry)
    except ValueError as e:
        raise TileError(f"entry {index} is not a ledger record: {e}") from None
    if leaf_position != position:
        raise IntegrityError(
            f"entry {index} is the record at position {leaf_position}, not {position}: only a log without gaps "
            "in its positions can be copied exactly"
        )
    try:
        derived = derive.row(topic, state) if fields is None else derive.resolve(*fields)
        decision_id, kind, subject, effective, digest, target, jurisdiction = derived
    except LedgerError:
        raise
    except Exception as e:  # a topic or state no reader takes
        raise IntegrityError(f"entry {index} (position {position}) cannot be read: {e}") from None
    if jurisdiction is UNKNOWN:
        raise IntegrityError(f"entry {index} (position {position}) names a decision or institution not before it")
    derive.pending[decision_id] = jurisdiction
    if kind == "institution.registered":
        derive.pending_subjects.setdefault(subject, jurisdiction)
    hex_id = oid.hex()
    row = (decision_id, hex_id, version, kind, subject, effective, digest, target, jurisdiction)
    return (hex_id, version, topic, state), row


def _keep_checkpoint(log: Log, source: str, checkpoint: Checkpoint, note: bytes) -> None:
    with log.db.transaction() as c:
        last = c.execute(f"SELECT MAX(seq) FROM {log.t(FOLLOWED)}").fetchone()
        seq = (int(last[0]) if last and last[0] is not None else 0) + 1
        c.execute(
            f"INSERT INTO {log.t(FOLLOWED)} (seq, size, root, note) VALUES (?, ?, ?, ?)",
            (seq, checkpoint.size, checkpoint.root, note.decode("utf-8")),
        )
        c.execute(
            f"INSERT INTO {log.t(FOLLOW)} (id, source, origin) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "source = excluded.source",
            (source, checkpoint.origin),
        )


def _keep_evidence(
    log: Log, reason: str, old_note: str, new_note: str, proof: Sequence[bytes], folder: str | Path | None
) -> str:
    """Keep both checkpoints and the proof: always in the ledger, and as files in ``folder`` if given."""
    seen = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    proof_text = "".join(b64encode(h) + "\n" for h in proof)
    with log.db.transaction() as c:
        c.execute(
            f"INSERT INTO {log.t(EVIDENCE)} (seen, reason, old_note, new_note, proof) VALUES (?, ?, ?, ?, ?)",
            (seen, reason, old_note, new_note, proof_text),
        )
    where = f"the ledger's {EVIDENCE} table"
    if folder is not None:
        out = Path(folder) / seen.replace(":", "")
        try:
            out.mkdir(parents=True, exist_ok=True)
            for name, text in (
                ("reason.txt", reason + "\n"),
                ("old.checkpoint", old_note),
                ("new.checkpoint", new_note),
                ("consistency-proof.txt", proof_text),
            ):
                (out / name).write_text(text, encoding="utf-8")
        except OSError as e:
            return f"{where} (writing {out} failed: {e.strerror or e})"
        where += f" and in {out}"
    return where
