"""Read-ahead helper processes: other cores read, hash and derive ahead of the one that decides.

On a large SQLite ledger, ``Prefetcher``'s helpers run ``ledger/leafhash.py`` over ranges of
positions and ``IndexHelper`` runs ``ledger/indexhash.py`` over the decision index, each on its own
read-only connection to the same file, while ``verify`` folds the tree; ``DeriveAhead`` derives the
index fields of the entries ``follow`` is about to store. Nothing they send is trusted beyond what
this process checks; any failure only means the work is done here. See docs/performance.md for
what they save.
"""

from __future__ import annotations

import contextlib
import gc
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from ledger import indexhash, leafhash, transcoder
from ledger.integrity.index import IndexLink, derived_fields, index_select
from ledger.integrity.leaves import split_leaf
from ledger.integrity.tables import Log
from ledger.sql import Cursor
from ledger.transcoder import MsgpackTranscoder

if TYPE_CHECKING:
    from ledger.application import LedgerApplication

WORKER_MIN = 200_000
"""Records below which ``verify`` reads alone: starting a helper process costs more than it saves
(docs/performance.md)."""

HELPERS = 2
"""Helper processes: on two cores two of them and the folding here keep both busy."""


def _cores() -> int:
    """Cores this process may run on: helpers only pay where there is a second one."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def database_file(c: Cursor) -> str | None:
    """The SQLite file a helper may open on its own connection; None where helpers cannot pay
    (one core) or there is no file to share (an in-memory or temporary database)."""
    if not sys.executable or _cores() < 2:
        return None
    found = [row for row in c.execute("PRAGMA database_list").fetchall() if row[1] == "main"]
    path = found[0][2] if found else ""  # "" for an in-memory or temporary database
    if not isinstance(path, str) or not path or not os.path.isfile(path):
        return None
    return path


def _spawn(script: str, args: Sequence[str]) -> subprocess.Popen[bytes]:
    """A helper process: our interpreter, isolated (``-I``), running one of our own standard-library
    scripts; no shell, its answer on a pipe."""
    return subprocess.Popen(
        [sys.executable, "-I", script, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


class Prefetcher:
    """Reads and hashes the log's leaves in helper processes while ``verify`` folds the tree.

    Why: on SQLite, reading a record and hashing its leaf is most of ``verify``'s work
    (docs/performance.md) and needs nothing from the tree, so other cores can do it ahead (ranges
    of positions dealt out in turn, each through a pipe that blocks when it is full: memory stays
    flat) while this process compares the level-0 hashes and folds. The helpers open the same
    file on their own connections and read positions up to ``stop``, fixed in this transaction:
    the log is append-only, so they see the records this transaction's snapshot holds. Nothing
    they send is trusted beyond that: a range whose hashes differ from the node store's is read
    again here, and any failure (no process, a short read, another count of records) only means
    the rest is read here.
    """

    _frame = leafhash.FRAME

    def __init__(self, procs: list[subprocess.Popen[bytes]]) -> None:
        self._procs = procs
        self._turn = 0

    @classmethod
    def start(cls, c: Cursor, log: Log, fast: bool, stop: int, batch: int) -> Prefetcher | None:
        """Helpers reading from position 0 to ``stop``; None where there is no file to share (an
        in-memory database), the log is small, or the fast path is off."""
        if not fast or log.select_plain is None or stop < WORKER_MIN:
            return None
        path = database_file(c)
        if path is None:
            return None
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for k in range(HELPERS):
                args = [path, log.select_plain, str(stop), str(batch), str(k), str(HELPERS)]
                procs.append(_spawn(leafhash.__file__, args))
        except OSError:
            cls(procs).close()
            return None
        with contextlib.suppress(ImportError, OSError, AttributeError, ValueError):  # Linux only; optional
            import fcntl

            for proc in procs:  # room for a few batches ahead, so a helper seldom waits on this one
                fcntl.fcntl(cast("IO[bytes]", proc.stdout).fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
        return cls(procs)

    def next(self, low: int) -> tuple[int, int, int, bytes] | None:
        """The range after position ``low``: (records, high position, first position, their
        hashes end to end); None at the end, or when a helper stopped or strayed."""
        stdout = self._procs[self._turn].stdout
        self._turn = (self._turn + 1) % len(self._procs)
        if stdout is None:  # pragma: no cover - always piped
            return None
        head = stdout.read(self._frame.size)
        if len(head) < self._frame.size:
            return None
        n, got_low, high, first = self._frame.unpack(head)
        packed = stdout.read(32 * n)
        if got_low != low or len(packed) < 32 * n:
            return None
        return n, high, first, packed

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


class IndexHelper:
    """``indexhash.chain`` of a SQLite ledger in a helper process, while ``verify`` scans the log.

    Why: reading the index rows is a large share of the whole check (docs/performance.md) and
    needs nothing from the scan, so another core can do it meanwhile (as ``Prefetcher``'s helpers read the
    log). The helper opens the file read-only on its own connection and reads the rows up to a
    signed position, which the append-only index never changes: the rows this transaction's
    snapshot holds. Only a digest comes back, compared with the signed one; any failure (no
    process, no answer) only means the rows are hashed here afterwards.
    """

    def __init__(self, proc: subprocess.Popen[bytes], positions: list[int]) -> None:
        self._proc, self.positions = proc, positions

    @classmethod
    def start(cls, c: Cursor, log: Log, chain: Sequence[IndexLink], batch: int) -> IndexHelper | None:
        if not chain or log.db.dialect != "sqlite":
            return None
        path = database_file(c)
        if path is None:
            return None
        positions = [link.position for link in chain]
        args = [path, index_select(log), str(batch), *map(str, positions)]
        try:
            proc = _spawn(indexhash.__file__, args)
        except OSError:
            return None
        return cls(proc, positions)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.communicate()

    def result(self) -> tuple[bytes, int] | None:
        """(digest, rows hashed), or None where the helper gave no well-formed answer."""
        try:
            out, _ = self._proc.communicate()
        except OSError:
            self._proc.kill()
            self._proc.wait()
            return None
        digest, _, rows = out.decode("ascii", "replace").strip().partition(" ")
        if self._proc.returncode != 0 or len(digest) != 64 or not rows.isdigit():
            return None
        try:
            return bytes.fromhex(digest), int(rows)
        except ValueError:
            return None


DERIVE_MIN = 20_000
"""Entries below which ``follow`` derives alone: starting a helper (a Python that imports the
ledger) costs more than it saves."""

Derived = list[list[Any]]
"""``derived_fields`` of each entry of a bundle, in order."""

_HELPER = "from ledger.integrity.readahead import serve_derive; serve_derive()"


def spawn_ledger(call: str, args: Sequence[str], *, stdin: bool = False) -> subprocess.Popen[bytes]:
    """A helper process running ``call`` (Python) with the ledger imported from where this process
    imports it (``args`` in its ``sys.argv[2:]``); its answer on a pipe, no shell."""
    root = str(Path(__file__).resolve().parents[2])  # the folder ``ledger`` is imported from
    return subprocess.Popen(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, sys.argv[1]); {call}", root, *args],
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


class _Partial:
    """A pipe as ``msgpack.Unpacker`` reads it: ``read(n)`` gives what has arrived (``read1``), where
    a buffered pipe's own ``read(n)`` would wait for all ``n`` bytes, past the message at hand."""

    def __init__(self, pipe: Any) -> None:
        self.read = pipe.read1


def serve_derive() -> None:
    """The helper: for each bundle of entries read from standard input (an array of byte strings),
    an array of their ``derived_fields``, or nil if one cannot be read (``follow`` then derives
    that bundle itself, naming the entry); both ways in the ledger's own encoding (``transcoder``)."""
    gc.disable()
    decode = MsgpackTranscoder().decode
    out = sys.stdout.buffer
    pack = transcoder.packer()
    for entries in transcoder.unpacker(_Partial(sys.stdin.buffer)):
        try:
            derived: list[list[Any]] | None = [
                list(derived_fields(topic, state, decode)) for _, _, _, topic, state in map(split_leaf, entries)
            ]
        except Exception:
            derived = None
        out.write(pack(derived))
        out.flush()


class DeriveAhead:
    """``derived_fields`` of ``follow``'s entry bundles in a helper process, some bundles ahead.

    Why: deriving an entry's index row (decoding its state, rebuilding the decision, digesting it)
    is most of what ``follow`` spends per entry, and needs nothing from the entries before it but
    the jurisdiction, which ``IndexDeriver.resolve`` then works out here, in log order. Only for the
    ledger's own transcoder without cipher or compressor, which is what the helper decodes with;
    any failure (no process, a bundle it cannot read) only means that bundle is derived here.
    Bundles go to the helper through a thread (a full pipe never blocks this process) and come
    back in order; at most ``follow.AHEAD`` are outstanding, so memory stays flat.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._results = transcoder.unpacker(_Partial(cast(IO[bytes], proc.stdout)))
        self._pack = transcoder.packer()
        self._broken = False
        self._feeder = threading.Thread(target=self._feed, name="ledger-derive-feed", daemon=True)
        self._feeder.start()

    @classmethod
    def start(cls, app: LedgerApplication, entries: int) -> DeriveAhead | None:
        mapper = app.mapper
        plain = type(mapper.transcoder) is MsgpackTranscoder and mapper.cipher is None and mapper.compressor is None
        if entries < DERIVE_MIN or not plain or not sys.executable or _cores() < 2:
            return None
        try:
            proc = spawn_ledger(_HELPER, (), stdin=True)
        except OSError:
            return None
        return cls(proc)

    def _feed(self) -> None:
        stdin = cast(IO[bytes], self._proc.stdin)
        try:
            while (data := self._queue.get()) is not None:
                stdin.write(data)
                stdin.flush()
        except OSError:  # the helper is gone: ``result`` finds no answer and the bundle is derived here
            pass
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def submit(self, entries: Sequence[bytes]) -> None:
        """Hand the helper a bundle; its answer is the next ``result`` not yet taken."""
        self._queue.put(self._pack(entries))

    def result(self) -> Derived | None:
        """The next submitted bundle's ``derived_fields``, or None (derive it here)."""
        if self._broken:
            return None
        try:
            found = next(self._results)
        except Exception:  # the helper died or sent something else: the rest is derived here
            self._broken = True
            return None
        return found if isinstance(found, list) else None

    def close(self) -> None:
        self._queue.put(None)
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._feeder.join()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
