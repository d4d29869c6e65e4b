"""A ledger's checkpoints cosigned by witnesses, and the witness a ledger's operator runs.

``cosign_latest`` asks every witness (``witness_http.collect``, in parallel, with a timeout) to
cosign the latest stored checkpoint, keeps each witness's last cosigned size (so the next request
carries the right consistency proof) and stores the cosigned note as a new checkpoint row: the
checkpoints table is append-only, and ``publish``, ``prove`` and ``follow`` read its latest row.
A policy (``ledger.policy``) names the witnesses and the quorum the note must reach.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ledger.checkpoints import VerifierKey
from ledger.cosignature import CosignerKey, CosignerSigner, note_parts
from ledger.errors import ConfigurationError, LedgerError, SignatureError
from ledger.integrity.signing import _exclusive, read_checkpoints, unverified
from ledger.integrity.store import consistency_proof
from ledger.integrity.tables import open_log
from ledger.integrity.tiles_out import COSIGNED, ensure_tables, public_note
from ledger.policy import Policy, PolicyError, QuorumMissing
from ledger.witness import Witness, WitnessState
from ledger.witness_http import WitnessPeer, collect

if TYPE_CHECKING:
    from ledger.application import LedgerApplication

SIZES = "ledger_witness_sizes"
DEFAULT_TIMEOUT = 10.0


def parse_peer(spec: str) -> WitnessPeer:
    """``NAME=VKEY@URL`` (``VKEY`` the witness's cosignature/v1 verifier key, or a file holding it)."""
    name, sep, rest = spec.partition("=")
    key_text, at, url = rest.rpartition("@")
    if not sep or not at or not name or not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"--witness {spec!r}: expected NAME=VKEY@http(s)://HOST:PORT")
    try:
        return WitnessPeer(CosignerKey.parse(_key_text(key_text)), url)
    except SignatureError as e:
        raise ConfigurationError(f"--witness {name}: {e}") from None


def _key_text(value: str) -> str:
    """A key given as itself or as the path of a file holding it (first non-comment line)."""
    path = Path(value).expanduser()
    if value.count("+") < 2 and path.is_file():
        try:
            lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigurationError(f"cannot read the key {value}: {e}") from None
        found = [line for line in lines if line and not line.startswith("#")]
        if not found:
            raise ConfigurationError(f"{value} holds no key")
        return found[0]
    return value


def policy_peers(policy: Policy) -> list[WitnessPeer]:
    """The witnesses of a policy that name their ``add-checkpoint`` URL."""
    return [WitnessPeer(key, url) for key, url in policy.witnesses.values() if url]


@dataclass(frozen=True)
class Cosigned:
    """The stored cosigned note, who cosigned, and why the others did not."""

    note: str
    cosigners: list[str]
    failures: dict[str, str]
    missing: QuorumMissing | None = None
    """Why the note misses the policy's quorum, if it does (the note is stored all the same)."""


def _sizes(app: LedgerApplication) -> dict[str, int]:
    log = open_log(app)
    with log.db.transaction() as c:
        c.execute(f"CREATE TABLE IF NOT EXISTS {log.t(SIZES)} (name TEXT PRIMARY KEY, size BIGINT NOT NULL)")
        return {str(name): int(size) for name, size in c.execute(f"SELECT name, size FROM {log.t(SIZES)}").fetchall()}


def cosign_latest(
    app: LedgerApplication,
    peers: Sequence[WitnessPeer],
    *,
    policy: Policy | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Cosigned:
    """Collect cosignatures on the latest stored checkpoint and store the cosigned note.

    Stores whatever was collected; a note missing the policy's quorum says why (``missing``).
    Raises ``LedgerError`` when no witness cosigned at all and there is no policy to judge it.
    """
    log = open_log(app)
    ensure_tables(log)
    with log.db.transaction(write=False) as c:
        stored = read_checkpoints(c, log)
    if not stored:
        raise ConfigurationError("no signed checkpoint to cosign: run `ledger checkpoint` first")
    last = stored[-1]
    body, lines = note_parts(last.note)
    witness_names = {peer.key.name for peer in peers}
    own = [line for line in lines if line.split(" ")[1:2] and line.split(" ")[1] not in witness_names]
    note = (body.decode("utf-8") + "\n" + "\n".join(own) + "\n").encode("utf-8")
    size = unverified(last.note).size
    sizes = _sizes(app)
    got, failures = collect(note, peers, sizes, lambda old: consistency_proof(app, old, size), timeout)
    cosigned = note.decode("utf-8") + "".join(line + "\n" for line in got.values())
    with log.db.transaction() as c:
        for name in got:
            c.execute(
                f"INSERT INTO {log.t(SIZES)} (name, size) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET "
                "size = excluded.size",
                (name, sizes[name]),
            )
        if got:
            c.execute(
                f"INSERT INTO {log.t(COSIGNED)} (seq, note) VALUES (?, ?) ON CONFLICT (seq) DO UPDATE SET "
                "note = excluded.note",
                (last.seq, cosigned),
            )
    missing: QuorumMissing | None = None
    if policy is not None:
        try:
            policy.accept(cosigned)
        except QuorumMissing as e:
            missing = e
    elif not got and peers:
        raise LedgerError("no witness cosigned the checkpoint: " + "; ".join(failures.values()))
    return Cosigned(cosigned, sorted(got), failures, missing)


def published_note(app: LedgerApplication) -> str | None:
    """The note ``publish`` would show: the latest checkpoint, cosigned where it was (or followed)."""
    log = open_log(app)
    ensure_tables(log)
    with log.db.transaction(write=False) as c:
        return public_note(c, log)


def check_quorum(policy: Policy, note: str | None) -> None:
    """``verify --policy`` / ``verify-proof --policy``: the checkpoint must reach the policy's quorum."""
    if note is None:
        raise PolicyError("no checkpoint to hold to the policy: run `ledger checkpoint`")
    policy.accept(note)


def witness_keygen(path: str | os.PathLike[str], name: str) -> str:
    """Write a new witness signer key to ``path`` (0600) and its verifier key to ``path.pub``."""
    key_path = Path(path).expanduser()
    pub_path = key_path.with_name(key_path.name + ".pub")
    for p in (key_path, pub_path):
        if p.exists():
            raise ConfigurationError(f"{p} already exists: refusing to overwrite a key")
    signer = CosignerSigner.generate(name)
    vkey = signer.verifier().encode()
    with _exclusive(key_path, 0o600) as handle:
        handle.write(signer.encode() + "\n")
    with _exclusive(pub_path, 0o644) as handle:
        handle.write(vkey + "\n")
    return vkey


def load_witness(key_file: str, logs: Sequence[str], state: str) -> Witness:
    """The witness of ``ledger witness serve``: its signer key, ``ORIGIN=VKEY`` logs, its state file."""
    key_path = Path(key_file).expanduser()
    try:
        if os.name == "posix" and key_path.stat().st_mode & 0o077:
            raise ConfigurationError(f"the witness key {key_path} is readable by others: chmod 600 {key_path}")
        signer = CosignerSigner.parse(_key_text(key_file))
    except OSError as e:
        raise ConfigurationError(f"cannot read the witness key {key_file}: {e.strerror or e}") from None
    except SignatureError as e:
        raise ConfigurationError(f"{key_file}: {e}") from None
    trusted: dict[str, list[str | VerifierKey]] = {}
    for spec in logs:
        origin, sep, vkey = spec.partition("=")
        if not sep or not origin:
            raise ConfigurationError(f"--log {spec!r}: expected ORIGIN=VKEY (the log's verifier key or its file)")
        try:
            key = VerifierKey.parse(_key_text(vkey))
        except SignatureError as e:
            raise ConfigurationError(f"--log {origin}: {e}") from None
        trusted.setdefault(origin, []).append(key)
    if not trusted:
        raise ConfigurationError("a witness needs at least one --log ORIGIN=VKEY")
    return Witness(signer, trusted, WitnessState(state))
