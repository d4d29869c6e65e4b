"""Verification: recompute the tree from the stored records and hold everything to it.

``verify`` recomputes every leaf from the stored records, streaming in batches, and folds them into
a fresh frontier; the node store is *not* trusted for the roots, which are compared with each
signed checkpoint. The level-0 hashes written when the tree was built are compared a batch at a
time, and leaf by leaf only where a batch differs, to name the first position where storage and
the recorded history disagree. Then the rest of the node store, the leaf map and the tree state
(``store.check_tree_tables``) and the decision index (``index.verify_index``). On a large SQLite
log, helper processes read ahead (``readahead``) while this one compares and folds.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from ledger import merkle
from ledger.checkpoints import Checkpoint, VerifierKey, b64encode, format_time, open_note
from ledger.errors import IntegrityError, SignatureError
from ledger.integrity.index import IndexLink, verify_index
from ledger.integrity.leaves import fast_reads, read_leaves
from ledger.integrity.readahead import IndexHelper, Prefetcher
from ledger.integrity.signing import StoredCheckpoint, read_checkpoints, unverified
from ledger.integrity.store import check_tree_tables, expected_position, level_blob, read_tree
from ledger.integrity.tables import BATCH, LEAVES, NODES, Log, fetch_rows, open_log, shown
from ledger.sql import Cursor

if TYPE_CHECKING:
    from ledger.application import LedgerApplication


@dataclass(frozen=True)
class Disagreement:
    """Where storage first disagrees with the recorded history, and how."""

    position: int | None
    leaf_index: int
    reason: str
    pinpointed: bool = True


@dataclass
class VerifyReport:
    """What ``verify`` found. ``ok`` is False when anything disagrees; ``check`` raises then."""

    records: int = 0
    tree_size: int = 0
    checkpoints_total: int = 0
    checkpoints_verified: int = 0
    covered: int = 0
    seconds: float = 0.0
    signatures_checked: bool = False
    index_rows: int = 0
    index_signed: int = 0
    """Of ``index_rows``, those checked against a signed index digest rather than recomputed."""
    first_disagreement: Disagreement | None = None
    problems: list[str] = field(default_factory=list)
    signature_problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """What holds but is not covered by a verified signature (no checkpoint, records after the
    last one, no key given): said always, a failure only under ``check(strict=True)``."""

    @property
    def ok(self) -> bool:
        return not self.problems and not self.signature_problems and self.first_disagreement is None

    @property
    def rate(self) -> float:
        """Records checked per second."""
        return self.records / self.seconds if self.seconds > 0 else float(self.records)

    def summary(self) -> str:
        signatures = "signatures checked" if self.signatures_checked else "signatures not checked (give --key)"
        uncovered = self.records - self.covered
        tail = f"; {uncovered} newer records not yet covered by a checkpoint" if uncovered > 0 else ""
        signed = f" ({self.index_signed} by a signed digest)" if self.index_signed else ""
        return (
            f"{self.records} records, {self.checkpoints_verified} of {self.checkpoints_total} checkpoints verified, "
            f"{self.index_rows} decision index rows checked{signed}, {self.rate:,.0f} records/s "
            f"({self.seconds:.2f} s); {signatures}{tail}"
        )

    def message(self) -> str:
        parts = []
        d = self.first_disagreement
        if d is not None:
            where = f"position {d.position}" if d.position is not None else f"leaf {d.leaf_index}"
            lead = "first disagreement at" if d.pinpointed else "first disagreement at or after"
            parts.append(f"storage disagrees with the signed history: {lead} {where} (leaf {d.leaf_index}): {d.reason}")
        parts.extend(self.problems)
        parts.extend(self.signature_problems)
        return "; ".join(parts)

    def check(self, *, strict: bool = False) -> None:
        """Raise ``IntegrityError`` (or ``SignatureError`` if only signatures failed) unless ok;
        ``strict``: also while anything is not covered by a verified signature (``warnings``)."""
        if self.ok:
            if strict and self.warnings:
                raise IntegrityError(
                    "not every record is covered by a verified signature (--strict): " + "; ".join(self.warnings)
                )
            return
        if self.first_disagreement is None and not self.problems:
            raise SignatureError(self.message())
        raise IntegrityError(self.message())


@dataclass
class _Target:
    label: str
    size: int
    root: bytes
    verified: bool = False
    index: tuple[int, bytes] | None = None  # the signed decision-index line, if any
    seq: int | None = None  # its row of ``ledger_checkpoints`` (None: a note given from outside)
    signed: bool = False  # its signature verified with a given key


def _load_targets(
    stored: Sequence[StoredCheckpoint],
    given: Sequence[str],
    keys: Sequence[str | VerifierKey],
    report: VerifyReport,
) -> list[_Target]:
    """Every checkpoint to check, sorted by size; signatures are checked first when keys are given.

    A stored checkpoint is checked by what its *signed note* says: the row's ``size`` and ``root``
    columns are only an index and must agree with it.
    """
    targets: list[_Target] = []
    origins = {cp.origin for cp in stored}
    notes: list[tuple[str, str, StoredCheckpoint | None]] = [(f"checkpoint #{cp.seq}", cp.note, cp) for cp in stored]
    notes += [(f"given checkpoint {i}", note, None) for i, note in enumerate(given, 1)]
    for label, note, row in notes:
        signature_ok = bool(keys)
        try:
            signed = open_note(note, keys)[0] if keys else unverified(note)
        except SignatureError as e:
            signature_ok = False
            if not keys:
                report.problems.append(f"{label} is not a readable checkpoint: {e}")
                continue
            report.signature_problems.append(f"{label}: {e}")
            try:
                signed = unverified(note)
            except SignatureError:
                continue
        if row is None and origins and signed.origin not in origins:
            report.problems.append(f"{label} is for log {signed.origin!r}, not this one ({', '.join(sorted(origins))})")
            continue
        if row is not None:
            _compare_checkpoint_row(label, row, signed, report)
        seq = None if row is None else row.seq
        targets.append(_Target(label, signed.size, signed.root, False, signed.index, seq, signature_ok))
    return sorted(targets, key=lambda t: t.size)


def _compare_checkpoint_row(label: str, row: StoredCheckpoint, signed: Checkpoint, report: VerifyReport) -> None:
    """The row's columns are an index of its note (``checkpoints``, ``prove`` and signing read
    them): each must say what the signed note says."""
    report.problems.extend(f"{label}: {fault}" for fault in row.faults)
    try:
        when = signed.time
        signed_time = "" if when is None else format_time(when)
    except SignatureError:
        signed_time = "?"
    differ = [
        f"{name} {shown(have)} (the note says {shown(want)})"
        for name, have, want in (
            ("size", row.size, signed.size),
            ("root", row.root, signed.root),
            ("time", row.time, signed_time),
            ("origin", row.origin, signed.origin),
        )
        if have != want and not (name == "size" and have == -1) and not (name == "root" and not have)
    ]
    if differ:
        report.problems.append(f"{label}: its row disagrees with its signed note: {', '.join(differ)}")


def verify(
    app: LedgerApplication,
    checkpoints: Sequence[str] = (),
    keys: Sequence[str | VerifierKey] = (),
    *,
    batch: int = BATCH,
    full: bool = False,
) -> VerifyReport:
    """Recompute the tree from storage and check it against every checkpoint; never trusts nodes.

    ``checkpoints`` are extra signed notes (e.g. files an auditor kept); ``keys`` verifier keys: when
    given, every checkpoint must carry a valid signature by one of them. Returns a report; call
    ``report.check()`` to raise on failure. Reads the log in batches in one read transaction
    (a consistent snapshot), hashing with ``hashlib`` directly and no per-record objects.

    The decision index: with ``keys``, the rows up to the last stored checkpoint whose signature
    and root verified and which signs a ``decision-index`` line are hashed as stored against that
    digest (``verify_index``); the rows after it are recomputed from their events. Without a key
    (nothing to trust the digest by), with ``full``, or where the digest disagrees (to name the
    rows), every row is recomputed.
    """
    started = time.perf_counter()
    log = open_log(app)
    report = VerifyReport(signatures_checked=bool(keys))
    with log.db.transaction(write=False) as c:
        try:
            tree_size = read_tree(c, log)[0].size
        except IntegrityError as e:  # the state row is not trusted anyway: fall back on the leaf map
            report.problems.append(str(e))
            found = c.execute(f"SELECT MAX(leaf_index) FROM {log.t(LEAVES)}").fetchone()
            tree_size = int(found[0]) + 1 if found and found[0] is not None else 0
        stored = read_checkpoints(c, log)
        targets = _load_targets(stored, list(checkpoints), keys, report)
        report.tree_size = tree_size
        report.checkpoints_total = len(targets)
        stop = c.execute(log.max_position).fetchone()
        stop_position = int(stop[0]) if stop and stop[0] is not None else 0
        # The chain is known from the signed notes before the scan, and hashed meanwhile; it is
        # trusted only up to the checkpoints whose roots the scan verifies.
        hinted = [] if full or not keys else _index_chain_links(targets, roots_checked=False)
        helper = IndexHelper.start(c, log, hinted, batch)
        try:
            scan = _scan(c, log, tree_size, stop_position, targets, batch)
        except BaseException:
            if helper is not None:
                helper.close()
            raise
        chain = [] if full or not keys else _index_chain_links(targets)
        index = verify_index(c, log, app, stop_position, batch, chain, helper)
        report.problems.extend(check_tree_tables(c, log, tree_size, batch))
        first_uncovered = _position_after(c, log, max((t.size for t in targets if t.verified), default=0))
    report.records = scan.records
    report.index_rows = index.rows
    report.index_signed = index.signed
    report.problems.extend(index.messages())
    report.checkpoints_verified = sum(t.verified for t in targets)
    report.covered = max((t.size for t in targets if t.verified), default=0)
    _judge(report, scan)
    _uncovered(report, first_uncovered)
    report.seconds = time.perf_counter() - started
    return report


def _position_after(c: Cursor, log: Log, leaves: int) -> int | None:
    """The position of the first stored record after the first ``leaves`` leaves."""
    last = expected_position(c, log, leaves - 1) if leaves else 0
    if last is None:
        return None
    found = c.execute(f"SELECT MIN({log.position}) FROM {log.events} WHERE {log.position} > ?", (last,)).fetchone()
    return None if found is None or found[0] is None else int(found[0])


def _uncovered(report: VerifyReport, first_position: int | None) -> None:
    """Say what no verified signature covers (with every checkpoint deleted, "0 of 0 verified"
    used to pass in silence): a failure under ``--strict``."""
    if not report.signatures_checked:
        report.warnings.append("signatures not checked: give --key with the ledger's verifier key")
    if report.records == 0:
        return
    if report.checkpoints_total == 0:
        report.warnings.append(
            f"no signed checkpoint: none of the {report.records} records is covered by a signature (a log rewritten "
            "after its checkpoints were deleted cannot be told from the real one: keep checkpoints outside the "
            "ledger and give them with --checkpoint)"
        )
    elif report.covered < report.records:
        where = f" (positions {first_position} on)" if first_position is not None else ""
        report.warnings.append(
            f"{report.records - report.covered} records{where} are after the last verified checkpoint: no signature "
            "covers them yet (`ledger checkpoint` signs them)"
        )


@dataclass
class _Scan:
    records: int = 0
    mismatch: Disagreement | None = None
    failed: _Target | None = None
    last_ok: int = 0  # largest verified checkpoint size below the first failure
    position_at_last_ok: int | None = None
    missing_from: int | None = None  # expected position of the first leaf storage no longer has


def _scan(c: Cursor, log: Log, tree_size: int, stop: int, targets: list[_Target], batch: int) -> _Scan:
    """The hot loop: stream records, hash leaves, fold the frontier, compare as it goes.

    Per batch: the leaf hashes (``read_leaves``, or ahead of time by ``Prefetcher``'s helper
    processes); the level-0 hashes the node store recorded for them compared all at once
    (``_level0_matches``), and leaf by leaf only when that fails, to name the first leaf that
    differs; then the batch folded into the frontier (``merkle.Frontier.extend``) in pieces that end
    at each checkpoint's size, where the root is compared with the signed one.
    """
    fold = _Fold(targets)
    fast = fast_reads(c, log)
    after = 0
    helpers = Prefetcher.start(c, log, fast, stop, batch)
    try:
        while helpers is not None:
            got = helpers.next(after)
            if got is None:  # done, or a helper met a record it will not judge: go on here
                break
            n, high, first_position, packed = got
            recorded = 32 * max(0, min(n, tree_size - fold.size))
            if not (fold.size < fold.next_check < fold.size + n) and (
                fold.out.mismatch is not None or not recorded or _level0_matches(c, log, fold.size, packed[:recorded])
            ):
                if n:
                    fold.add(first_position, [packed[i : i + 32] for i in range(0, 32 * n, 32)])
                after = high
                continue
            # a checkpoint ends inside the range (positions are needed there) or it differs from
            # the node store: read it here, and go on with the helpers if they read the same
            rows, found, complete = read_leaves(c, log, after, high, high - after, fast=fast)
            if len(rows) != n:
                break  # not what this transaction sees: read the rest here
            fold.add_batch(c, log, rows, found, complete, tree_size)
            after = high
    finally:
        if helpers is not None:
            helpers.close()
    while True:
        rows, found, complete = read_leaves(c, log, after, stop, batch, fast=fast)
        if not rows:
            break
        fold.add_batch(c, log, rows, found, complete, tree_size)
        after = rows[-1][0]
        if len(rows) < batch:
            break
    return fold.finish(c, log, tree_size)


_MALFORMED = hashlib.sha256(b"\x02malformed").digest()
"""What a malformed record's leaf counts as in the recomputed tree: nothing it could match."""


class _Fold:
    """The recomputed tree of ``verify``: a frontier, settled against each checkpoint."""

    def __init__(self, targets: list[_Target]) -> None:
        self.out = _Scan()
        self.pending = list(targets)  # sorted by size
        self.tree = merkle.Frontier()
        self.next_check = -1
        self._next()
        while self.next_check == 0:  # an empty-tree checkpoint
            _settle(self.out, self.pending.pop(0), merkle.EMPTY_ROOT, 0)
            self._next()
        self.want_position = self.out.position_at_last_ok is None

    @property
    def size(self) -> int:
        return self.tree.size

    def _next(self) -> None:
        self.next_check = self.pending[0].size if self.pending else -1

    def add(self, first_position: int, hashes: list[bytes]) -> None:
        """Leaves that no checkpoint ends inside of (only the first one's position is known)."""
        if self.want_position:
            self.out.position_at_last_ok = first_position
            self.want_position = False
        self.tree.extend(hashes)
        self._settle_due()

    def add_batch(
        self,
        c: Cursor,
        log: Log,
        rows: Sequence[Sequence[Any]],
        found: list[bytes | None],
        complete: bool,
        tree_size: int,
    ) -> None:
        """A batch read here: checked against the node store (until the first disagreement),
        then cut where checkpoints end, each piece's first position at hand."""
        if self.out.mismatch is None:
            self.out.mismatch = _first_mismatch(c, log, rows, found, complete, self.size, tree_size)
        hashes = cast("list[bytes]", found) if complete else [h or _MALFORMED for h in found]
        done, first = 0, self.size
        while done < len(rows):
            end = min(len(rows), self.next_check - first) if self.next_check > self.size else len(rows)
            self.add(rows[done][0], hashes[done:end])
            done = end

    def _settle_due(self) -> None:
        while self.size == self.next_check:
            ok = _settle(self.out, self.pending.pop(0), self.tree.root(), self.size)
            if ok and self.out.failed is None:
                self.want_position = True  # the next leaf's position is where trust ends
            self._next()

    def finish(self, c: Cursor, log: Log, tree_size: int) -> _Scan:
        out, size = self.out, self.size
        out.records = size
        if out.mismatch is None and size < tree_size:
            out.missing_from = expected_position(c, log, size)
            out.mismatch = Disagreement(
                out.missing_from,
                size,
                f"storage ends after {size} records but {tree_size} were recorded in the tree: "
                + (
                    f"records from position {out.missing_from} on are missing"
                    if out.missing_from is not None
                    else "records are missing"
                ),
            )
        for target in self.pending:  # checkpoints larger than what storage holds
            if out.failed is None:
                out.failed = target
        return out


def _first_mismatch(
    c: Cursor,
    log: Log,
    rows: Sequence[Sequence[Any]],
    found: list[bytes | None],
    complete: bool,
    first: int,
    tree_size: int,
) -> Disagreement | None:
    """The first leaf of a batch (leaf ``first`` on) that is malformed or not what the tree recorded.

    The recorded level-0 hashes are checked all at once; leaf by leaf only when they differ.
    Leaves beyond ``tree_size`` were never recorded: only a malformed one disagrees there.
    """
    recorded = max(0, min(len(found), tree_size - first))
    if complete and (recorded == 0 or _level0_matches(c, log, first, b"".join(cast("list[bytes]", found[:recorded])))):
        return None
    expected = _expected(c, log, first, first + recorded) if recorded else []
    for k, h in enumerate(found):
        position = rows[k][0]
        if h is None:
            return Disagreement(position, first + k, "the stored record is malformed (not what was written)")
        if k < recorded and h != expected[k]:
            return _describe(position, expected_position(c, log, first + k), expected[k], first + k)
    return None


def _level0_matches(c: Cursor, log: Log, start: int, packed: bytes) -> bool:
    """Whether the node store's level-0 hashes from leaf ``start`` on are exactly ``packed``
    (32-byte hashes end to end).

    One aggregate per batch instead of a row per leaf: the concatenation in ``idx`` order is
    compared with the concatenation of the recomputed hashes (same count, same bytes, same order).
    A false answer only sends the batch to ``_expected``, which reads the rows one by one.
    """
    return level_blob(c, log, 0, start, start + len(packed) // merkle.HASH_SIZE) == packed


def _settle(out: _Scan, target: _Target, root: bytes, size: int) -> bool:
    target.verified = hmac.compare_digest(root, target.root)
    if target.verified:
        if out.failed is None:
            out.last_ok = size
    elif out.failed is None:
        out.failed = target
    return target.verified


def _expected(c: Cursor, log: Log, start: int, end: int) -> list[bytes | None]:
    """Level-0 hashes recorded for leaves ``[start, end)``; None where one is missing.

    Positions are not read here: a leaf's bytes include its position, so a moved record already
    shows as a different hash, and the leaf map is read only for the first one that differs.
    """
    where = f"FROM {log.t(NODES)} WHERE level = 0 AND idx >= ? AND idx < ? ORDER BY idx"
    rows = fetch_rows(c, f"SELECT hash {where}", (start, end))
    if len(rows) == end - start:  # unique keys in a range of that many: complete and in order
        return [r[0] for r in rows]
    by_index: dict[int, bytes] = {
        int(r[0]): bytes(r[1]) for r in fetch_rows(c, f"SELECT idx, hash {where}", (start, end))
    }
    return [by_index.get(i) for i in range(start, end)]


def _describe(actual: int, expected: int | None, expected_hash: bytes | None, index: int) -> Disagreement:
    if expected is None or expected_hash is None:
        return Disagreement(actual, index, f"the Merkle node store lacks leaf {index}: it was altered")
    if actual > expected:
        return Disagreement(expected, index, f"the record at position {expected} is missing (deleted)")
    if actual < expected:
        return Disagreement(actual, index, f"the record at position {actual} was never in the tree (inserted)")
    return Disagreement(actual, index, f"the record at position {actual} was changed after it was recorded")


def _judge(report: VerifyReport, scan: _Scan) -> None:
    """Turn what the scan saw into the report's verdict and its first disagreement."""
    failed, mismatch = scan.failed, scan.mismatch
    if mismatch is not None and mismatch.leaf_index < scan.last_ok:
        # Storage matches a signed checkpoint that covers this leaf: the node store is what changed.
        report.problems.append(
            f"the Merkle node store disagrees with storage at position {mismatch.position} (leaf "
            f"{mismatch.leaf_index}) although storage matches the signed checkpoint of size {scan.last_ok}: "
            "the node store was altered"
        )
        mismatch = None
    if failed is not None:
        signed = f"{failed.label} (size {failed.size}, root {b64encode(failed.root)})"
        if failed.size > scan.records:
            detail = f"{signed} covers {failed.size} records but storage holds only {scan.records}"
        else:
            detail = f"the root recomputed from storage does not match {signed}"
        if mismatch is not None and mismatch.leaf_index < failed.size:
            report.first_disagreement = Disagreement(
                mismatch.position, mismatch.leaf_index, f"{mismatch.reason}; {detail}"
            )
        else:
            report.first_disagreement = Disagreement(
                scan.position_at_last_ok if scan.last_ok < scan.records else None,
                scan.last_ok,
                f"{detail}; storage agrees with the Merkle node store up to there, so either both were altered "
                "or the checkpoint was not signed over this log",
                pinpointed=False,
            )
    elif mismatch is not None:
        report.first_disagreement = Disagreement(
            mismatch.position,
            mismatch.leaf_index,
            f"{mismatch.reason} (after the last signed checkpoint: caught by the Merkle node store)",
        )


def _index_chain_links(targets: Sequence[_Target], *, roots_checked: bool = True) -> list[IndexLink]:
    """The signed index lines of the stored checkpoints, oldest first, up to the newest one a
    verified signature and a verified root vouch for; empty when there is none. Before the scan
    (``roots_checked=False``), the roots are not asked about: what the chain would be."""
    ordered = sorted((t for t in targets if t.seq is not None), key=lambda t: t.seq or 0)
    links: list[IndexLink] = []
    trusted = 0
    for t in ordered:
        if t.index is not None:
            links.append(IndexLink(t.label, *t.index))
            if t.signed and (t.verified or not roots_checked):
                trusted = len(links)
    return links[:trusted]
