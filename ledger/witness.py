"""A witness: cosigns a log's checkpoint only if it is consistent with every one it saw before.

C2SP tlog-witness (https://c2sp.org/tlog-witness), ``add-checkpoint``. A witness keeps, per log
origin, the latest size and root it cosigned; a submission names the size it extends (``old``) and
carries a consistency proof from there. Checking the old size and storing the new checkpoint happen
in one SQLite ``BEGIN IMMEDIATE`` transaction, so two concurrent submissions can never roll the
stored size back (the race the spec describes). Refused submissions whose log signature verified are
kept as evidence: a second root for a size the witness already cosigned is proof of a fork.

Status codes, as the spec defines them: 400 a malformed body or an old size above the checkpoint's,
403 no signature by a key trusted for the origin, 404 an unknown origin, 409 an old size that is not
the stored one (the body is the stored size) or the same size with another root, 422 a consistency
proof that does not verify.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ledger.checkpoints import Checkpoint, VerifierKey, b64decode, b64encode, open_note
from ledger.cosignature import CosignerSigner
from ledger.errors import LedgerError, SignatureError
from ledger.merkle import verify_consistency

MAX_BODY = 64 * 1024
"""A checkpoint with 63 proof lines and a hundred signatures fits well within this."""
MAX_PROOF_LINES = 63


class WitnessRefusal(LedgerError):
    """The witness will not cosign: ``status`` is the HTTP status the protocol assigns."""

    def __init__(self, status: int, message: str, *, size: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.size = size


@dataclass(frozen=True)
class Submission:
    """An ``add-checkpoint`` body: the size it extends, the proof from there, the signed note."""

    old_size: int
    proof: tuple[bytes, ...]
    note: bytes

    def encode(self) -> bytes:
        lines = [f"old {self.old_size}", *(b64encode(h) for h in self.proof)]
        return ("\n".join(lines) + "\n\n").encode() + self.note


def parse_submission(body: bytes) -> Submission:
    """Parse an ``add-checkpoint`` body strictly; anything malformed is a 400."""
    if len(body) > MAX_BODY:
        raise WitnessRefusal(400, f"request body over {MAX_BODY} bytes")
    head, sep, note = body.partition(b"\n\n")
    if not sep or not note:
        raise WitnessRefusal(400, "expected an old size line, proof lines, an empty line, then the checkpoint")
    lines = head.split(b"\n")
    old = lines[0].removeprefix(b"old ")
    if lines[0][:4] != b"old " or not old.isdigit() or (old != b"0" and old.startswith(b"0")):
        raise WitnessRefusal(400, "the first line must be 'old <size>' in canonical decimal")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessRefusal(400, f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof: list[bytes] = []
    for number, line in enumerate(lines[1:], 2):
        try:
            h = b64decode(line.decode("ascii"), "a proof line")
        except (UnicodeDecodeError, SignatureError):
            h = b""
        if len(h) != 32:
            raise WitnessRefusal(400, f"line {number} is not a base64 SHA-256 hash")
        proof.append(h)
    return Submission(int(old), tuple(proof), note)


class WitnessState:
    """The latest cosigned (size, root) of each origin, and the evidence of refused checkpoints."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS latest (origin TEXT PRIMARY KEY, size INTEGER NOT NULL, "
                "root BLOB NOT NULL, note BLOB NOT NULL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS evidence (seen REAL NOT NULL, origin TEXT NOT NULL, "
                "status INTEGER NOT NULL, reason TEXT NOT NULL, submission BLOB NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def latest(self, origin: str) -> tuple[int, bytes] | None:
        with self._connect() as db:
            row = db.execute("SELECT size, root FROM latest WHERE origin = ?", (origin,)).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def evidence(self, origin: str) -> list[tuple[int, str, bytes]]:
        """What was refused for ``origin`` although its log had signed it: (status, reason, body)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT status, reason, submission FROM evidence WHERE origin = ? ORDER BY rowid", (origin,)
            ).fetchall()
        return [(int(s), str(r), bytes(b)) for s, r, b in rows]

    def advance(
        self, checkpoint: Checkpoint, submission: Submission, check: Callable[[int, bytes | None], None]
    ) -> None:
        """Atomically: ``check(stored size, stored root)``, then store ``checkpoint`` as the latest.

        A refusal raised by ``check`` is recorded as evidence and re-raised; nothing else changes.
        """
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT size, root FROM latest WHERE origin = ?", (checkpoint.origin,)).fetchone()
            try:
                check(0 if row is None else int(row[0]), None if row is None else bytes(row[1]))
            except WitnessRefusal as refusal:
                db.execute(
                    "INSERT INTO evidence VALUES (?, ?, ?, ?, ?)",
                    (time.time(), checkpoint.origin, refusal.status, str(refusal), submission.encode()),
                )
                db.execute("COMMIT")
                raise
            db.execute(
                "INSERT INTO latest VALUES (?, ?, ?, ?) ON CONFLICT(origin) DO UPDATE SET "
                "size = excluded.size, root = excluded.root, note = excluded.note",
                (checkpoint.origin, checkpoint.size, checkpoint.root, submission.note),
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()


class Witness:
    """A witness for the logs it knows: ``logs`` maps an origin to the verifier keys it trusts."""

    def __init__(
        self,
        signer: CosignerSigner,
        logs: Mapping[str, Sequence[str | VerifierKey]],
        state: WitnessState,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = signer
        self.logs = {origin: list(keys) for origin, keys in logs.items()}
        self.state = state
        self.clock = clock

    def add_checkpoint(self, body: bytes) -> str:
        """Check a submission and return the cosignature line(s), each ending in a newline."""
        submission = parse_submission(body)
        checkpoint = self._open(submission.note)
        old, proof = submission.old_size, list(submission.proof)
        if old > checkpoint.size:
            raise WitnessRefusal(400, f"old size {old} is above the checkpoint's size {checkpoint.size}")

        def check(stored_size: int, stored_root: bytes | None) -> None:
            if old != stored_size:
                raise WitnessRefusal(409, f"the latest cosigned size is {stored_size}, not {old}", size=stored_size)
            if stored_root is None or old == 0:
                if proof:
                    raise WitnessRefusal(422, "a consistency proof from size 0 must be empty")
                return
            if old == checkpoint.size:
                if proof or stored_root != checkpoint.root:
                    raise WitnessRefusal(409, f"size {old} was cosigned with another root", size=stored_size)
                return
            if not verify_consistency(old, checkpoint.size, stored_root, checkpoint.root, proof):
                raise WitnessRefusal(422, f"the consistency proof from {old} to {checkpoint.size} does not verify")

        self.state.advance(checkpoint, submission, check)
        body_bytes = checkpoint.body()
        return self.signer.cosign(body_bytes, int(self.clock())) + "\n"

    def _open(self, note: bytes) -> Checkpoint:
        origin = note.split(b"\n", 1)[0].decode("utf-8", "replace")
        keys = self.logs.get(origin)
        if keys is None:
            raise WitnessRefusal(404, f"unknown log origin {origin!r}")
        try:
            checkpoint, _ = open_note(note, keys)
        except SignatureError as exc:
            raise WitnessRefusal(403, f"no valid signature by a key trusted for {origin!r}: {exc}") from None
        return checkpoint
