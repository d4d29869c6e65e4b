"""Checkpoints and keys: signing the tree's root (C2SP tlog-checkpoint + signed-note).

``checkpoint`` signs (origin, size, root, time) and the decision index's digest, and keeps the
note in ``ledger_checkpoints``. A log must never sign two inconsistent checkpoints, so it first
checks a consistency proof from the node store against every stored checkpoint, and the index
rows it newly covers against their events, and refuses if one fails. The keys are files: the
signer key private to its owner, the verifier keys anyone may hold.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger import indexhash, merkle
from ledger.checkpoints import (
    Checkpoint,
    SignerKey,
    VerifierKey,
    b64encode,
    check_origin,
    format_time,
    generate_key,
    note_signers,
    open_note,
    parse_checkpoint,
    sign,
)
from ledger.errors import ConfigurationError, IntegrityError, SignatureError
from ledger.integrity.index import INDEX_SEED, check_index, index_fetch
from ledger.integrity.store import TreeState, node_reader, read_tree, sync
from ledger.integrity.tables import BATCH, CHECKPOINTS, Log, open_log, shown
from ledger.sql import Cursor

if TYPE_CHECKING:
    from ledger.application import LedgerApplication


@dataclass(frozen=True)
class StoredCheckpoint:
    """One signed checkpoint as the ledger keeps it."""

    seq: int
    size: int
    root: bytes
    time: str
    origin: str
    note: str
    faults: tuple[str, ...] = ()
    """What is wrong with the row's own columns (a size that is not a number…): -1 / empty stand in."""


def read_checkpoints(c: Cursor, log: Log) -> list[StoredCheckpoint]:
    """Every stored checkpoint row, oldest first, read as it is: a column holding what it should
    not (SQLite stores anything anywhere) is a fault of that row, never an exception."""
    sql = f"SELECT seq, size, root, time, origin, note FROM {log.t(CHECKPOINTS)} ORDER BY seq"
    if log.db.dialect == "sqlite":  # text that is not UTF-8 cannot be read as text
        sql = sql.replace("time, origin, note", "CAST(time AS BLOB), CAST(origin AS BLOB), CAST(note AS BLOB)")
    out = []
    for k, (seq, size, stored_root, *texts) in enumerate(c.execute(sql).fetchall(), 1):
        faults: list[str] = []

        def number(value: Any, name: str, faults: list[str] = faults) -> int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            faults.append(f"its {name} {shown(value)} is not a number")
            return -1

        root = bytes(stored_root) if isinstance(stored_root, (bytes, bytearray, memoryview)) else b""
        if len(root) != merkle.HASH_SIZE:
            faults.append(f"its root {shown(stored_root)} is not a {merkle.HASH_SIZE}-byte hash")
            root = b""
        strings = []
        for name, value in zip(("time", "origin", "note"), texts, strict=True):
            try:
                strings.append(value.decode("utf-8") if isinstance(value, bytes) else str(value))
            except UnicodeDecodeError:
                faults.append(f"its {name} is not UTF-8 text")
                strings.append("")
        seq_number = number(seq, "seq")
        out.append(
            StoredCheckpoint(
                seq_number if seq_number >= 0 else k,
                number(size, "size"),
                root,
                strings[0],
                strings[1],
                strings[2],
                tuple(faults),
            )
        )
    return out


def stored_checkpoints(app: LedgerApplication) -> list[StoredCheckpoint]:
    """Every checkpoint the ledger signed, oldest first."""
    log = open_log(app)
    with log.db.transaction(write=False) as c:
        return read_checkpoints(c, log)


def unverified(note: str) -> Checkpoint:
    """The checkpoint a signed note carries, without checking its signatures (no key at hand)."""
    split = note.rfind("\n\n")
    if split < 0:
        raise SignatureError("malformed note: no blank line before the signatures")
    return parse_checkpoint(note[: split + 1])


def default_origin(app: LedgerApplication) -> str:
    """The origin line of this log: the one it last signed, else ``medtech-ledger/<log id>``.

    The log id is random, made once when the tree tables are created, so two ledgers never
    share an origin (witnesses tell logs apart by it) and one ledger keeps its own for ever.
    """
    log = open_log(app)
    with log.db.transaction(write=False) as c:
        stored = read_checkpoints(c, log)
        if stored:
            return stored[-1].origin
        return f"medtech-ledger/{read_tree(c, log)[0].log_id}"


def checkpoint(
    app: LedgerApplication,
    signer_key: str | SignerKey,
    origin: str | None = None,
    *,
    now: datetime | None = None,
    rotate_key: bool = False,
    new_origin: bool = False,
) -> str:
    """Sync, then sign (origin, size, root, time) as a C2SP checkpoint, keep it, return the note.

    Refuses (``IntegrityError``) when the tree is not consistent with a checkpoint already signed:
    for each stored one, an RFC 9162 §2.1.4 consistency proof from the node store must verify
    against its signed root. A log that signed two inconsistent checkpoints would have proved
    it rewrote history; refusing keeps that from ever being signed.

    A log keeps its identity: the key and the origin of the last signed checkpoint. Another key
    is refused unless ``rotate_key`` (a key rotation, docs/reliability.md), another origin unless
    ``new_origin``; with the same key, the last checkpoint's signature must verify with it (a
    row claiming this key's signature that does not verify was forged). The origin must be one
    C2SP allows (``checkpoints.check_origin``).
    """
    key = signer_key if isinstance(signer_key, SignerKey) else SignerKey.parse(signer_key)
    sync(app)
    log = open_log(app)
    with log.db.transaction() as c:
        state, _ = read_tree(c, log, lock=True)
        get_node = node_reader(c, log)
        root = merkle.root_from(get_node, state.size)
        if not hmac.compare_digest(root, state.root):
            raise IntegrityError("the Merkle node store and the stored frontier disagree: run `ledger verify`")
        stored = read_checkpoints(c, log)
        _check_consistent(stored, state, get_node)
        last = stored[-1] if stored else None
        if origin is None:
            origin = last.origin if last is not None else f"medtech-ledger/{state.log_id}"
        elif last is not None and origin != last.origin and not new_origin:
            raise ConfigurationError(
                f"checkpoint #{last.seq} was signed for the origin {last.origin!r}, not {origin!r}: a log keeps its "
                "origin; give --new-origin to sign under another one on purpose"
            )
        try:
            check_origin(origin)
        except ValueError as e:
            raise ConfigurationError(f"cannot make a checkpoint: {e}") from None
        if last is not None:
            _check_same_key(last, key, rotate_key)
        index_position, index_digest = _index_link(c, log, app, stored, state)
        when = (now or datetime.now(UTC)).replace(microsecond=0)
        try:
            cp = Checkpoint(origin, state.size, root).with_time(when).with_index(index_position, index_digest)
        except ValueError as e:
            raise ConfigurationError(f"cannot make a checkpoint: {e}") from None
        note = sign(cp, key)
        seq = (stored[-1].seq if stored else 0) + 1
        c.execute(
            f"INSERT INTO {log.t(CHECKPOINTS)} (seq, size, root, time, origin, note) VALUES (?, ?, ?, ?, ?, ?)",
            (seq, state.size, root, format_time(when), origin, note),
        )
    return note


def _index_link(
    c: Cursor, log: Log, app: LedgerApplication, stored: Sequence[StoredCheckpoint], state: TreeState
) -> tuple[int, bytes]:
    """The ``decision-index`` line the new checkpoint signs: the rows of the records it newly
    covers (after the last index line signed, up to the tree's last position) are recomputed
    from their events first, and signing is refused where one disagrees, so a digest is only
    ever signed over rows that were checked. Incremental: the rows signed before are not read."""
    after, previous = _last_index_line(stored)
    if after > state.last_position:
        raise IntegrityError(
            f"the last signed decision-index line covers positions up to {after}, but the tree ends at position "
            f"{state.last_position}: refusing to sign"
        )
    found = check_index(c, log, app, state.last_position, BATCH, after=after, bounded=True)
    if found.problems:
        raise IntegrityError(
            f"the decision index disagrees with its events at the records this checkpoint would cover (positions "
            f"{after + 1} to {state.last_position}): {'; '.join(found.messages())}: refusing to sign; run "
            "`ledger verify`"
        )
    return state.last_position, indexhash.link(index_fetch(c, log), previous, after, state.last_position, BATCH)[0]


def _check_same_key(last: StoredCheckpoint, key: SignerKey, rotate_key: bool) -> None:
    """Refuse to sign with another key than the last checkpoint's, unless rotating on purpose;
    with the same key, the last checkpoint must really carry its signature."""
    try:
        signers = note_signers(last.note)
    except SignatureError as e:
        raise IntegrityError(f"stored checkpoint #{last.seq} is not a readable note ({e}): refusing to sign") from None
    mine = (key.name, key.key_id)
    if mine not in signers:
        if rotate_key:
            return
        named = ", ".join(f"{name}+{kid:08x}" for name, kid in signers)
        raise ConfigurationError(
            f"checkpoint #{last.seq} was signed by {named}, not by this key ({key.name}+{key.key_id:08x}): "
            "refusing to sign with another key; give --rotate-key if the log's key is being replaced "
            "(docs/reliability.md, key rotation)"
        )
    try:
        open_note(last.note, [key.verifier()])
    except SignatureError as e:
        raise IntegrityError(
            f"stored checkpoint #{last.seq} names this key but its signature does not verify ({e}): "
            "the checkpoints were altered; run `ledger verify`"
        ) from None


def _check_consistent(stored: Sequence[StoredCheckpoint], state: TreeState, get_node: merkle.GetNode) -> None:
    seen: set[tuple[int, bytes]] = set()
    for cp in stored:
        if cp.faults:
            raise IntegrityError(f"stored checkpoint #{cp.seq}: {'; '.join(cp.faults)}: refusing to sign")
        try:
            signed = unverified(cp.note)
        except SignatureError as e:
            raise IntegrityError(
                f"stored checkpoint #{cp.seq} is not a readable note ({e}): refusing to sign"
            ) from None
        if (signed.size, signed.root) != (cp.size, cp.root):
            raise IntegrityError(
                f"stored checkpoint #{cp.seq}: its row says size {cp.size}, its signed note size {signed.size} "
                "with another root: refusing to sign"
            )
        if (cp.size, cp.root) in seen:
            continue
        seen.add((cp.size, cp.root))
        if cp.size > state.size:
            raise IntegrityError(
                f"stored checkpoint #{cp.seq} covers {cp.size} records but the tree has only {state.size}: "
                "refusing to sign a smaller log"
            )
        proof = merkle.consistency_proof_from(get_node, cp.size, state.size)
        if not merkle.verify_consistency(cp.size, state.size, cp.root, state.root, proof):
            raise IntegrityError(
                f"the tree of {state.size} records is not consistent with checkpoint #{cp.seq} "
                f"(size {cp.size}, root {b64encode(cp.root)}): refusing to sign a checkpoint that contradicts it"
            )


def _last_index_line(stored: Sequence[StoredCheckpoint]) -> tuple[int, bytes]:
    """(position, digest) of the newest stored checkpoint carrying an index line, else the
    chain's start ``(0, INDEX_SEED)``: where the next checkpoint's link begins."""
    for cp in reversed(stored):
        line = unverified(cp.note).index
        if line is not None:
            return line
    return 0, INDEX_SEED


def default_key_path() -> Path:
    """Where ``ledger keygen`` writes and ``ledger checkpoint`` reads the signer key by default."""
    import platformdirs

    return Path(platformdirs.user_data_dir("medtech-ledger")) / "checkpoint.key"


@contextmanager
def _exclusive(path: Path, mode: int) -> Iterator[Any]:
    """A new file created with ``mode`` from the start (O_EXCL: never an existing one)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise ConfigurationError(f"{path} already exists: refusing to overwrite a key") from None
    except OSError as e:
        raise ConfigurationError(f"cannot create {path}: {e.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yield handle


def keygen(path: str | os.PathLike[str], name: str) -> str:
    """Write a new Ed25519 signer key to ``path`` (mode 0600) and its verifier key to ``path.pub``.

    Returns the verifier key (public). The signer key is written once, created with 0600 so it is
    never readable by others even for a moment, and never printed; an existing file is never
    overwritten (a lost signing key would orphan every checkpoint it signed).
    """
    key_path = Path(path).expanduser()
    pub_path = key_path.with_name(key_path.name + ".pub")
    for p in (key_path, pub_path):
        if p.exists():
            raise ConfigurationError(f"{p} already exists: refusing to overwrite a key")
    try:
        skey, vkey = generate_key(name)
    except SignatureError as e:
        raise ConfigurationError(str(e)) from None
    try:
        key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise ConfigurationError(f"cannot create {key_path.parent}: {e.strerror}") from None
    with _exclusive(key_path, 0o600) as handle:
        handle.write(skey + "\n")
    try:
        with _exclusive(pub_path, 0o644) as handle:
            handle.write(vkey + "\n")
    except ConfigurationError:
        key_path.unlink()
        raise
    return vkey


def load_signer_key(path: str | os.PathLike[str]) -> SignerKey:
    """Read a signer key file; refuse one that others can read (as ssh does)."""
    key_path = Path(path).expanduser()
    try:
        mode = key_path.stat().st_mode
        text = key_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"no signer key at {key_path}: make one with `ledger keygen`") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigurationError(f"cannot read the signer key {key_path}: {e}") from None
    if os.name == "posix" and mode & 0o077:
        raise ConfigurationError(f"the signer key {key_path} is readable by others: chmod 600 {key_path}")
    try:
        return SignerKey.parse(text.strip())
    except SignatureError as e:
        raise ConfigurationError(f"{key_path}: {e}") from None


def load_verifier_keys(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Verifier keys from files: one key per non-empty line, ``#`` comments allowed."""
    keys: list[str] = []
    for path in paths:
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigurationError(f"cannot read the verifier key {path}: {e}") from None
        found = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        if not found:
            raise ConfigurationError(f"{path} holds no verifier key")
        for line in found:
            if line.startswith("PRIVATE+KEY+"):
                raise ConfigurationError(f"{path} holds a signer (private) key: give the .pub file")
            VerifierKey.parse(line)
        keys.extend(found)
    return keys
