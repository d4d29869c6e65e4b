"""The ledger's Merkle log written out as C2SP tlog-tiles (``ledger.tiles`` holds the format).

``write_tiles`` publishes the tree of the latest stored checkpoint into a folder: the hash tiles
read from the node store, the entry bundles of the records' leaf bytes, and last the checkpoint
note itself (cosigned, where the ledger keeps a cosigned one). Why in that order, each file under
a temporary name renamed into place: a reader that sees a checkpoint finds every tile it needs,
and never half a file. Incremental: what the folder's own ``checkpoint`` already covers is not
written again (full tiles never change; a partial tile has its own path per width).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ledger import leafhash, merkle
from ledger.errors import ConfigurationError, IntegrityError, LedgerError
from ledger.integrity.leaves import fast_reads, read_leaf_bytes
from ledger.integrity.readahead import HELPERS, database_file, spawn_ledger
from ledger.integrity.signing import read_checkpoints, unverified
from ledger.integrity.store import (
    blob_of,
    expected_position,
    expected_position_sql,
    level_blob,
    level_blob_sql,
    node_reader,
)
from ledger.integrity.tables import Log, open_log
from ledger.sql import Cursor
from ledger.sqlite import short_switch_interval
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH, Tile, bundle, new_tiles, tile_at

if TYPE_CHECKING:
    from ledger.application import LedgerApplication

CHECKPOINT = "checkpoint"
COSIGNED = "ledger_cosigned"
"""The cosigned note of a checkpoint row (by its ``seq``). Beside, not in, ``ledger_checkpoints``:
that table is append-only, and a second row for one checkpoint would be a link of its own in the
decision-index chain the checkpoints sign."""
FOLLOWED = "ledger_followed"
"""The checkpoints a followed copy verified (``ledger.follow``): another log's, never its own."""


def ensure_tables(log: Log) -> None:
    with log.db.transaction() as c:
        c.execute(f"CREATE TABLE IF NOT EXISTS {log.t(COSIGNED)} (seq BIGINT PRIMARY KEY, note TEXT NOT NULL)")
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {log.t(FOLLOWED)} (seq BIGINT PRIMARY KEY, size BIGINT NOT NULL, "
            "root BLOB NOT NULL, note TEXT NOT NULL)".replace("BLOB", log.db.blob)
        )


def followed_notes(c: Cursor, log: Log) -> list[str]:
    """The followed checkpoints' notes, oldest first (none in a ledger of its own)."""
    return [str(row[0]) for row in c.execute(f"SELECT note FROM {log.t(FOLLOWED)} ORDER BY seq").fetchall()]


def cosigned_note(c: Cursor, log: Log, seq: int) -> str | None:
    """Checkpoint ``seq``'s note with the witnesses' cosignatures, if any were collected; reads only
    (a ledger that never asked a witness has no such table, and a read-only server cannot make it)."""
    if not log.db.has_table(c, COSIGNED):
        return None
    row = c.execute(f"SELECT note FROM {log.t(COSIGNED)} WHERE seq = ?", (seq,)).fetchone()
    return str(row[0]) if row else None


def public_note(c: Cursor, log: Log) -> str | None:
    """The note to publish: the latest checkpoint's, cosigned where a cosigned one is kept; in a
    followed copy, the latest checkpoint it verified."""
    stored = read_checkpoints(c, log)
    if not stored:
        followed = followed_notes(c, log)
        return followed[-1] if followed else None
    return cosigned_note(c, log, stored[-1].seq) or stored[-1].note


@dataclass(frozen=True)
class Published:
    """What one ``write_tiles`` did: the sizes before and after, and how many files it wrote."""

    old_size: int
    size: int
    tiles: int
    bundles: int


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    except OSError as e:
        temp.unlink(missing_ok=True)
        raise ConfigurationError(f"cannot write {path}: {e.strerror or e}") from e


def published_size(folder: Path, origin: str, get_node: merkle.GetNode, size: int) -> int:
    """The size the folder's checkpoint already covers: 0 (publish it all) without one or with one
    of another log. A published file is never replaced by another: a checkpoint of this log that
    is larger than ``size`` or whose root is not this tree's at its size is refused."""
    try:
        cp = unverified((folder / CHECKPOINT).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, LedgerError):
        return 0
    if cp.origin != origin:
        return 0
    if cp.size > size or merkle.root_from(get_node, cp.size) != cp.root:
        raise IntegrityError(
            f"{folder / CHECKPOINT} shows {cp.size} records of this log with another history than the tree's "
            f"{size}: refusing to publish over it (publish into an empty folder)"
        )
    return cp.size


def write_tiles(app: LedgerApplication, folder: str | os.PathLike[str]) -> Published:
    """Publish the tree of the latest stored checkpoint into ``folder`` (see the module)."""
    out = Path(folder)
    log = open_log(app)
    ensure_tables(log)
    with log.db.transaction(write=False) as c:
        note = public_note(c, log)
        if note is None:
            raise ConfigurationError("no signed checkpoint to publish: run `ledger checkpoint` first")
        cp = unverified(note)
        old = published_size(out, cp.origin, node_reader(c, log), cp.size)
        tiles = bundles = 0
        fast = fast_reads(c, log)
        helpers = BundleHelpers.start(c, log, out, old, cp.size) if fast else None
        with _Writer(out) as write, contextlib.ExitStack() as stack:
            if helpers is not None:
                stack.callback(helpers.close)
            for tile in new_tiles(old, cp.size):
                hashes = _hash_tile(c, log, tile)
                write(tile.path, hashes)
                tiles += 1
                if tile.level == 0:
                    bundles += 1
                    if helpers is None:  # its entry bundle, checked against the hashes just read
                        _write_bundle(write, c, log, tile, hashes, fast=fast)
            if helpers is not None:  # what they did not write (or could not) is written here, or refused
                written = helpers.wait()
                for tile in new_tiles(old, cp.size):
                    if tile.level == 0 and tile.index not in written:
                        _write_bundle(write, c, log, tile, _hash_tile(c, log, tile), fast=fast)
    write_atomically(out / CHECKPOINT, note.encode("utf-8"))  # last: every file it needs is in place
    return Published(old, cp.size, tiles, bundles)


HELPED_MIN = 50_000
"""New records below which ``write_tiles`` writes the entry bundles alone: starting the helper
processes costs more than they save (docs/performance.md)."""


class BundleHelpers:
    """Entry bundles written by helper processes (each every ``HELPERS``-th bundle) while this one
    writes the hash tiles: on SQLite, reading the records, making their leaves, checking them
    against the tree's hashes and writing the files is most of the work, and needs nothing from
    this process. Each helper reads the file on its own read-only connection, the records up to
    the checkpoint's size (the log is append-only, so they are the ones this transaction sees),
    and names each bundle it wrote; a bundle it could not write (a malformed record, a hash that
    differs) or did not name is written here, where the problem is named."""

    def __init__(self, procs: list[subprocess.Popen[bytes]]) -> None:
        self.procs = procs

    @classmethod
    def start(cls, c: Cursor, log: Log, folder: Path, old: int, size: int) -> BundleHelpers | None:
        path = database_file(c)
        if path is None or log.select_plain is None or size - old < HELPED_MIN:
            return None
        first, end = old // TILE_WIDTH, -(-size // TILE_WIDTH)
        procs: list[subprocess.Popen[bytes]] = []
        queries = (log.select_plain, level_blob_sql(log), expected_position_sql(log))
        try:
            for k in range(HELPERS):
                args = [path, str(folder), str(size), str(first + k), str(end), str(HELPERS), *queries]
                procs.append(spawn_ledger(_BUNDLES, args))
        except OSError:
            cls(procs).wait()
            return None
        return cls(procs)

    def close(self) -> None:
        """Stop any helper still at work (this process is leaving with an error)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()

    def wait(self) -> set[int]:
        """The bundles the helpers wrote (by index), once they are done."""
        written: set[int] = set()
        for proc in self.procs:
            out, _ = proc.communicate()
            written.update(int(line) for line in out.split() if line.isdigit())
        return written


_BUNDLES = "from ledger.integrity.tiles_out import serve_bundles; serve_bundles(sys.argv[2:])"


def serve_bundles(argv: Sequence[str]) -> None:
    """A helper (``BundleHelpers``): write bundles ``first``, ``first + step``… below ``end`` of a
    log of ``size`` records into ``folder``, printing the index of each one written."""
    path, folder, size, first, end, step, select_plain, blob_sql, position_sql = argv
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA query_only = 1")
    con.execute("BEGIN")
    for index in range(int(first), int(end), int(step)):
        tile = tile_at(0, index, int(size))
        start = index * TILE_WIDTH
        try:
            (position,) = con.execute(position_sql, (start,)).fetchone()
            rows = con.execute(select_plain, (position - 1, 2**63 - 1, tile.width)).fetchall()
            if len(rows) != tile.width or {len(row[1]) for row in rows} != {32}:
                continue
            entries = leafhash.leaf_rows(rows)
            hashes = blob_of(con.execute(blob_sql, (0, start, start + tile.width)).fetchall(), tile.width)
            if hashes is None or merkle.leaf_hashes(entries) != hashes:
                continue
            write_atomically(Path(folder) / Tile("entries", index, tile.width).path, bundle(entries))
        except Exception:  # written, or refused, by the process that asked
            continue
        sys.stdout.write(f"{index}\n")
    sys.stdout.flush()


class _Writer:
    """``write_atomically`` on threads while the next tiles are read: creating and writing a file
    waits on the file system, not on this process (the GIL is released meanwhile). At most
    ``AHEAD`` files wait; leaving the block waits for all of them and raises the first failure."""

    AHEAD = 32

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ledger-tiles")
        self.waiting: deque[Future[None]] = deque()
        self.scoped = contextlib.ExitStack()

    def __enter__(self) -> Callable[[str, bytes], None]:
        # Each file is several system calls, each giving the GIL up and asking it back: with the
        # default interval a writer waits a whole interval each time for this busy thread to yield it.
        self.scoped.enter_context(short_switch_interval())
        return self.write

    def write(self, path: str, data: bytes) -> None:
        self.waiting.append(self.pool.submit(write_atomically, self.folder / path, data))
        if len(self.waiting) > self.AHEAD:
            self.waiting.popleft().result()

    def __exit__(self, *exc: object) -> None:
        try:
            while self.waiting:
                self.waiting.popleft().result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.scoped.close()


def _write_bundle(
    write: Callable[[str, bytes], None], c: Cursor, log: Log, tile: Tile, hashes: bytes, *, fast: bool
) -> None:
    """The entry bundle of level-0 ``tile``, its entries checked against ``hashes`` (the tile's)."""
    entries = Tile("entries", tile.index, tile.width)
    write(entries.path, bundle(_entries(c, log, entries, hashes, fast=fast)))


def _hash_tile(c: Cursor, log: Log, tile: Tile) -> bytes:
    assert isinstance(tile.level, int)
    start = tile.index * TILE_WIDTH
    data = level_blob(c, log, TILE_HEIGHT * tile.level, start, start + tile.width)
    if data is None:
        raise IntegrityError(f"the Merkle node store lacks the nodes of {tile.path}: run `ledger verify`")
    return data


def _entries(c: Cursor, log: Log, tile: Tile, hashes: bytes, *, fast: bool) -> list[bytes]:
    """The leaf bytes of the records of an entry bundle, read in log order from its first leaf's
    position, each checked against its leaf hash in ``hashes`` (the level-0 tile's)."""
    first = tile.index * TILE_WIDTH
    position = expected_position(c, log, first)
    if position is None:
        raise IntegrityError(f"the Merkle leaf map lacks leaf {first}: run `ledger verify`")
    try:
        entries = read_leaf_bytes(c, log, position - 1, tile.width, fast=fast)
    except ValueError:
        raise IntegrityError(f"a record of {tile.path} is malformed: run `ledger verify`") from None
    if len(entries) != tile.width:
        raise IntegrityError(f"{tile.path} needs {tile.width} records after position {position - 1}")
    if hashes != merkle.leaf_hashes(entries):
        raise IntegrityError(f"the records of {tile.path} do not hash to the tree's leaves: run `ledger verify`")
    return entries
