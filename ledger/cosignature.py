"""Witness cosignatures: C2SP tlog-cosignature/v1 (https://c2sp.org/tlog-cosignature).

A cosignature is a note signature by a witness saying "at ``time`` I had verified that this
checkpoint is consistent with every earlier one of its log I saw". Its key type byte is 0x04 (not
the 0x01 of a log's own note key), and what it signs is not the note body alone but::

    cosignature/v1
    time <seconds since the epoch>
    <the whole checkpoint body>

so a cosignature can never be replayed as the log's own signature, nor moved to another checkpoint.
The signature line carries ``key ID ‖ uint64 big-endian time ‖ Ed25519 signature``.

Keys use the note encodings of ``ledger.checkpoints`` with type 0x04:
``<name>+<hex key ID>+<base64(0x04 ‖ public key)>`` and ``PRIVATE+KEY+<name>+<hex ID>+<base64(0x04 ‖ seed)>``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.checkpoints import SIG_PREFIX, b64decode, b64encode
from ledger.errors import SignatureError

ALG_COSIGNATURE_V1 = 0x04
"""Signature-type byte of tlog-cosignature/v1 (Ed25519) keys."""
HEADER = b"cosignature/v1\n"
_MAX_TIME = 2**64 - 1


def cosigner_key_id(name: str, public_key: bytes) -> int:
    """First 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key), big-endian."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_COSIGNATURE_V1]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def message(body: bytes, timestamp: int) -> bytes:
    """What a cosigner signs for ``body`` (a checkpoint's text, final newline included) at ``timestamp``."""
    if not 0 <= timestamp <= _MAX_TIME:
        raise SignatureError(f"a cosignature's time must be within 0..2**64-1, not {timestamp}")
    return HEADER + f"time {timestamp}\n".encode() + body


@dataclass(frozen=True)
class CosignerKey:
    """A witness's verifier key: name, key ID, Ed25519 public key."""

    name: str
    key_id: int
    public_key: bytes

    @classmethod
    def parse(cls, vkey: str) -> CosignerKey:
        """Parse ``<name>+<hex key ID>+<base64(0x04 ‖ public key)>``; anything else is refused."""
        parts = vkey.strip().split("+", 2) if isinstance(vkey, str) else []
        if len(parts) != 3 or not parts[0] or len(parts[1]) != 8:
            raise SignatureError("malformed witness key: expected <name>+<8 hex digits>+<key>")
        name, hex_id, b64 = parts
        raw = b64decode(b64, f"witness key {name!r}")
        if len(raw) != 33 or raw[0] != ALG_COSIGNATURE_V1:
            raise SignatureError(f"witness key {name!r} is not a cosignature/v1 key (0x04 + 32 bytes)")
        try:
            kid = int(hex_id, 16)
            Ed25519PublicKey.from_public_bytes(raw[1:])
        except ValueError:
            raise SignatureError(f"witness key {name!r} is malformed") from None
        if kid != cosigner_key_id(name, raw[1:]):
            raise SignatureError(f"witness key {name!r}: key ID {hex_id} does not match the key")
        return cls(name, kid, raw[1:])

    def encode(self) -> str:
        raw = b64encode(bytes([ALG_COSIGNATURE_V1]) + self.public_key)
        return f"{self.name}+{self.key_id:08x}+{raw}"

    def verify(self, body: bytes, line: str) -> int | None:
        """The time of this key's valid cosignature on ``body`` in signature ``line``; None when
        the line is another key's. A line of this key that does not verify raises."""
        name, _, b64 = line.removeprefix(SIG_PREFIX).partition(" ")
        if not line.startswith(SIG_PREFIX) or name != self.name:
            return None
        raw = b64decode(b64, f"signature by {name}")
        if len(raw) < 4 or int.from_bytes(raw[:4], "big") != self.key_id:
            return None
        if len(raw) != 4 + 8 + 64:
            raise SignatureError(f"cosignature by {name} is {len(raw)} bytes, not 76")
        timestamp = int.from_bytes(raw[4:12], "big")
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(raw[12:], message(body, timestamp))
        except InvalidSignature:
            raise SignatureError(f"invalid cosignature by {name}: the checkpoint was altered or forged") from None
        return timestamp


@dataclass(frozen=True)
class CosignerSigner:
    """A witness's signing key. ``repr`` never shows the seed."""

    name: str
    seed: bytes = field(repr=False)

    @classmethod
    def generate(cls, name: str) -> CosignerSigner:
        return cls(name, Ed25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def parse(cls, skey: str) -> CosignerSigner:
        """Parse ``PRIVATE+KEY+<name>+<hex ID>+<base64(0x04 ‖ seed)>``."""
        parts = skey.strip().split("+", 4) if isinstance(skey, str) else []
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise SignatureError("malformed witness signer key: expected PRIVATE+KEY+<name>+<key ID>+<key>")
        raw = b64decode(parts[4], "witness signer key")
        if len(raw) != 33 or raw[0] != ALG_COSIGNATURE_V1:
            raise SignatureError(f"witness signer key {parts[2]!r} is not a cosignature/v1 key")
        signer = cls(parts[2], raw[1:])
        if f"{signer.verifier().key_id:08x}" != parts[3].lower():
            raise SignatureError(f"witness signer key {parts[2]!r}: key ID {parts[3]} does not match the key")
        return signer

    def verifier(self) -> CosignerKey:
        public = Ed25519PrivateKey.from_private_bytes(self.seed).public_key().public_bytes_raw()
        return CosignerKey(self.name, cosigner_key_id(self.name, public), public)

    def encode(self) -> str:
        raw = b64encode(bytes([ALG_COSIGNATURE_V1]) + self.seed)
        return f"PRIVATE+KEY+{self.name}+{self.verifier().key_id:08x}+{raw}"

    def cosign(self, body: bytes, timestamp: int) -> str:
        """The signature line (``— <name> <base64>``, no newline) cosigning ``body`` at ``timestamp``."""
        signature = Ed25519PrivateKey.from_private_bytes(self.seed).sign(message(body, timestamp))
        raw = self.verifier().key_id.to_bytes(4, "big") + timestamp.to_bytes(8, "big") + signature
        return f"{SIG_PREFIX}{self.name} {b64encode(raw)}"


def note_parts(note: bytes | str) -> tuple[bytes, list[str]]:
    """A signed note's body (final newline included) and its signature lines."""
    try:
        text = note.decode("utf-8") if isinstance(note, bytes) else note
    except UnicodeDecodeError:
        raise SignatureError("malformed note: not UTF-8") from None
    body, sep, block = text.rpartition("\n\n")
    if not sep or not block.endswith("\n"):
        raise SignatureError("malformed note: no blank line before the signatures")
    return (body + "\n").encode("utf-8"), block[:-1].split("\n")


def cosigned_by(note: bytes | str, witnesses: Sequence[CosignerKey]) -> dict[str, int]:
    """The witnesses (by name) whose valid cosignature the note carries, with its time."""
    body, lines = note_parts(note)
    found: dict[str, int] = {}
    for key in witnesses:
        for line in lines:
            stamp = key.verify(body, line)
            if stamp is not None:
                found[key.name] = stamp
                break
    return found
