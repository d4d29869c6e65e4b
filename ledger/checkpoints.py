"""Signed checkpoints: C2SP ``signed-note`` + ``tlog-checkpoint`` with Ed25519.

Why these formats: a checkpoint (origin, tree size, root hash) signed as a note is what witnesses,
monitors and the Go tooling (golang.org/x/mod/sumdb/note, transparency-dev) already understand, so
anyone can check the ledger's history without our code. Keys use that package's text encodings:

* signer key   ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 ‖ Ed25519 seed)>``
* verifier key ``<name>+<hex key ID>+<base64(0x01 ‖ Ed25519 public key)>``
* key ID       first 4 bytes, big-endian, of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)

A signed note is the body (lines ending in ``\\n``), a blank line, then one line per signature,
``— <name> <base64(key ID ‖ signature)>`` (U+2014 EM DASH). The signature covers the body
including its final newline, not the blank line.

Opening follows ``note.Open``: signatures by keys the caller does not know are skipped (a witness
may have cosigned), a known key whose signature fails is an error (somebody forged or altered the
note), and at least one known key must have signed. Parsing is deliberately stricter than Go where
the difference only rejects non-canonical encodings (base64 with stray bits, ``+1`` or ``01`` as a
size): a checkpoint has exactly one byte representation, so two notes about the same tree can be
compared byte for byte.

The ledger also commits to *when* it saw a tree: an extension line ``time <RFC 3339 UTC>``
(``Checkpoint.with_time`` / ``Checkpoint.time``), covered by the signature like every body line;
and to its decision index: ``decision-index <last position> <base64 SHA-256>``
(``Checkpoint.with_index`` / ``Checkpoint.index``; the digest is defined in ``ledger.integrity``
and docs/reliability.md). C2SP lets a checkpoint carry such extension lines after the root hash;
readers that do not know them keep them verbatim (they are signed bytes).

Every refusal raises ``SignatureError`` (ledger.errors), so the CLI reports it without a
traceback. Constructing a ``Checkpoint`` with impossible fields in code is a bug and raises
``ValueError`` (``TypeError`` for a wrong type) instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ledger.errors import SignatureError

ALG_ED25519 = 0x01
"""Signature-type byte of Ed25519 keys in note key encodings (golang.org/x/mod/sumdb/note)."""

SIG_PREFIX = "\u2014 "
"""Every signature line starts with EM DASH and a space."""

MAX_SIGNATURES = 100
"""Like ``note.Open``: bounds the work an attacker can make a verifier do with one note."""

TIME_PREFIX = "time "
"""Extension line carrying the checkpoint's time stamp: ``time 2026-11-24T09:37:00Z``."""

INDEX_PREFIX = "decision-index "
"""Extension line carrying the digest of the decision index up to a position:
``decision-index 100030 <base64 SHA-256>``."""

_HASH_SIZE = 32
_MAX_TREE_SIZE = 2**64 - 1  # tree sizes are uint64 everywhere else (Go, RFC 9162 TLS structs)
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")  # int() would accept "+1", " 1", "1_0" and "١"
_B64_RE = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_HEX8_RE = re.compile(r"[0-9A-Fa-f]{8}")
_TIME_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z", re.ASCII)


# --- small strict codecs ----------------------------------------------------------------------


def b64decode(text: str, what: str) -> bytes:
    """Standard base64, padded and canonical: one encoding per value, so none can be altered."""
    if not _B64_RE.fullmatch(text):
        raise SignatureError(f"{what} is not standard padded base64")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - the regex already ruled it out
        raise SignatureError(f"{what} is not standard padded base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise SignatureError(f"{what} is not canonical base64 (unused bits are set)")
    return raw


def b64encode(raw: bytes) -> str:
    """Standard padded base64, as checkpoints, signed notes and proofs spell hashes and keys."""
    return base64.b64encode(raw).decode("ascii")


def _is_valid_name(name: str) -> bool:
    """``isValidName`` of sumdb/note: non-empty, no white space, no '+'.

    Control characters are refused too: a note may not contain them, so such a name could never
    appear in a signature line anyway.
    """
    return bool(name) and "+" not in name and not any(c.isspace() or ord(c) < 0x20 for c in name) and _encodable(name)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def key_id(name: str, public_key: bytes) -> int:
    """The 32-bit key ID: first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key), big-endian.

    It names a key in a signature line so a verifier can pick the right key without trying all;
    hashing the name in binds each key to one name.
    """
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key)
    return int.from_bytes(digest.digest()[:4], "big")


# --- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifierKey:
    """A parsed verifier key: the name, key ID and Ed25519 public key a note is checked with."""

    name: str
    key_id: int
    public_key: bytes

    @classmethod
    def parse(cls, vkey: str) -> VerifierKey:
        """Parse ``<name>+<hex key ID>+<base64(0x01 ‖ public key)>`` like ``note.NewVerifier``."""
        if not isinstance(vkey, str):
            raise SignatureError("a verifier key must be a string")
        parts = vkey.strip().split("+", 2)  # the base64 part may itself contain '+'
        if len(parts) != 3:
            raise SignatureError("malformed verifier key: expected <name>+<key ID>+<key>")
        name, hex_id, b64 = parts
        if not _is_valid_name(name):
            raise SignatureError(f"malformed verifier key: invalid name {name!r}")
        if not _HEX8_RE.fullmatch(hex_id):
            raise SignatureError(f"malformed verifier key {name!r}: key ID must be 8 hex digits")
        raw = b64decode(b64, f"verifier key {name!r}")
        if len(raw) != 1 + 32 or raw[0] != ALG_ED25519:
            raise SignatureError(f"verifier key {name!r} is not an Ed25519 key (0x01 + 32 bytes)")
        kid = int(hex_id, 16)
        if kid != key_id(name, raw[1:]):
            raise SignatureError(f"verifier key {name!r}: key ID {hex_id} does not match the key")
        try:
            Ed25519PublicKey.from_public_bytes(raw[1:])
        except ValueError as exc:
            raise SignatureError(f"verifier key {name!r} is not a valid Ed25519 key") from exc
        return cls(name, kid, raw[1:])

    def encode(self) -> str:
        """The verifier key string, as ``note.GenerateKey`` writes it (lower-case hex ID)."""
        return f"{self.name}+{self.key_id:08x}+{b64encode(bytes([ALG_ED25519]) + self.public_key)}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class SignerKey:
    """A parsed signer key. ``repr`` never shows the seed, so a logged key does not leak."""

    name: str
    key_id: int
    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.seed, bytes) or len(self.seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")

    @classmethod
    def parse(cls, skey: str) -> SignerKey:
        """Parse ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 ‖ seed)>`` as ``note.NewSigner``."""
        if not isinstance(skey, str):
            raise SignatureError("a signer key must be a string")
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            # Deliberately no echo of the input: it may be a secret key with a typo.
            raise SignatureError("malformed signer key: expected PRIVATE+KEY+<name>+<key ID>+<key>")
        _, _, name, hex_id, b64 = parts
        if not _is_valid_name(name):
            raise SignatureError(f"malformed signer key: invalid name {name!r}")
        if not _HEX8_RE.fullmatch(hex_id):
            raise SignatureError(f"malformed signer key {name!r}: key ID must be 8 hex digits")
        try:
            raw = b64decode(b64, "signer key")
        except SignatureError:
            raise SignatureError(f"malformed signer key {name!r}: bad base64") from None
        if len(raw) != 1 + 32 or raw[0] != ALG_ED25519:
            raise SignatureError(f"signer key {name!r} is not an Ed25519 key (0x01 + 32 bytes)")
        key = cls(name, int(hex_id, 16), raw[1:])
        if key.key_id != key_id(name, key.public_key):
            # note.NewSigner checks this too: a wrong ID would make every signature unverifiable.
            raise SignatureError(f"signer key {name!r}: key ID {hex_id} does not match the key")
        return key

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key derived from the seed."""
        return self._private().public_key().public_bytes_raw()

    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    def verifier(self) -> VerifierKey:
        """The matching verifier key."""
        return VerifierKey(self.name, self.key_id, self.public_key)

    def encode(self) -> str:
        """The signer key string (secret)."""
        material = b64encode(bytes([ALG_ED25519]) + self.seed)
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{material}"

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of ``message`` (deterministic, RFC 8032)."""
        return self._private().sign(message)


def generate_key(name: str) -> tuple[str, str]:
    """A new Ed25519 key pair for ``name``: (signer key, verifier key), as ``note.GenerateKey``."""
    if not isinstance(name, str) or not _is_valid_name(name):
        raise SignatureError(
            f"invalid key name {name!r}: must be non-empty, without white space, '+' or control characters"
        )
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    signer = SignerKey(name, key_id(name, public), seed)
    return signer.encode(), signer.verifier().encode()


def verifier_from_signer(signer_key: str) -> str:
    """The verifier key string for a signer key string (to publish it, or to check a config)."""
    return SignerKey.parse(signer_key).verifier().encode()


# --- checkpoints (C2SP tlog-checkpoint) -------------------------------------------------------


def format_time(when: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``; fraction only when non-zero, without trailing zeros.

    One spelling per instant, so equal times give byte-equal checkpoint bodies. A naive datetime is
    refused: guessing its zone would sign a time nobody meant.
    """
    if not isinstance(when, datetime) or when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("a checkpoint time must be a timezone-aware datetime")
    t = when.astimezone(UTC)
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if t.microsecond:
        text += "." + f"{t.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_time(text: str) -> datetime:
    """Inverse of ``format_time``; only that canonical spelling is accepted."""
    match = _TIME_RE.fullmatch(text)
    if not match:
        raise SignatureError(f"checkpoint time {text!r} is not RFC 3339 UTC (YYYY-MM-DDTHH:MM:SSZ)")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = match.group(7) or ""
    try:
        when = datetime(year, month, day, hour, minute, second, int(fraction.ljust(6, "0")), tzinfo=UTC)
    except ValueError as exc:
        raise SignatureError(f"checkpoint time {text!r} is not a valid date and time") from exc
    if format_time(when) != text:
        raise SignatureError(f"checkpoint time {text!r} is not in canonical form")
    return when


def _check_line(line: str, what: str) -> None:
    if not isinstance(line, str) or not line:
        raise ValueError(f"{what} must be a non-empty string")
    if any(ord(c) < 0x20 for c in line) or not _encodable(line):
        raise ValueError(f"{what} must be one line of UTF-8 text without control characters")


MAX_ORIGIN_BYTES = 255
"""The longest origin a C2SP ML-DSA-44 cosignature can name (``opaque log_origin<1..2^8-1>``):
a log with a longer one could not be cosigned by such a witness."""


def check_origin(origin: str) -> str:
    """The origin line a log signs under, or ``ValueError`` saying what is wrong with it.

    C2SP tlog-checkpoint: non-empty; signed-note: UTF-8, no control character (so one line);
    tlog-checkpoint SHOULD, made a rule here since the ledger chooses its own: no Unicode white
    space and no '+' (a schema-less URL such as ``example.org/ledger``); at most
    ``MAX_ORIGIN_BYTES`` bytes of UTF-8 (tlog-cosignature). Parsing others' notes stays as lenient
    as the specifications (``parse_checkpoint``): this is what the ledger itself signs.
    """
    if not isinstance(origin, str) or not origin:
        raise ValueError("the origin must be a non-empty line of text")
    if not _encodable(origin):
        raise ValueError("the origin must be valid UTF-8 text")
    bad = next((c for c in origin if ord(c) < 0x20 or c == "\x7f" or c.isspace() or c == "+"), None)
    if bad is not None:
        raise ValueError(
            f"the origin {origin!r} holds U+{ord(bad):04X}: it must be one line without white space, '+' or "
            "control characters (a schema-less URL such as example.org/ledger)"
        )
    if not origin.isprintable():
        raise ValueError(f"the origin {origin!r} holds a character that is not printable")
    if len(origin.encode("utf-8")) > MAX_ORIGIN_BYTES:
        raise ValueError(f"the origin is {len(origin.encode('utf-8'))} bytes of UTF-8, more than {MAX_ORIGIN_BYTES}")
    return origin


def note_signers(text: str) -> list[tuple[str, int]]:
    """(key name, key ID) of each signature line of a signed note, unverified: which keys claim
    to have signed it. ``SignatureError`` where the note has no well-formed signature block."""
    note = _note_text(text, "signed note")
    split = note.rfind("\n\n")
    block = note[split + 2 :] if split >= 0 else ""
    if not block.endswith("\n"):
        raise SignatureError("malformed note: no signature lines after a blank line")
    out: list[tuple[str, int]] = []
    for number, line in enumerate(block[:-1].split("\n")[:MAX_SIGNATURES], 1):
        name, _, b64 = line.removeprefix(SIG_PREFIX).partition(" ")
        if not line.startswith(SIG_PREFIX) or not _is_valid_name(name):
            raise SignatureError(f"malformed note: signature line {number} has no valid name")
        raw = b64decode(b64, f"signature line {number}")
        if len(raw) < 5:
            raise SignatureError(f"malformed note: signature line {number} is too short")
        out.append((name, int.from_bytes(raw[:4], "big")))
    return out


@dataclass(frozen=True)
class Checkpoint:
    """A log's claim "my tree of ``size`` leaves has root ``root``" (C2SP tlog-checkpoint).

    ``extensions`` are the optional further body lines, kept verbatim so that re-serialising a
    parsed checkpoint gives the signed bytes back.
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if not isinstance(self.size, int) or isinstance(self.size, bool):
            raise TypeError("size must be an int")
        if not 0 <= self.size <= _MAX_TREE_SIZE:
            raise ValueError(f"size must be within 0..2**64-1, not {self.size}")
        if not isinstance(self.root, bytes) or len(self.root) != _HASH_SIZE:
            raise ValueError(f"root must be {_HASH_SIZE} bytes")
        if not isinstance(self.extensions, tuple):
            raise TypeError("extensions must be a tuple of strings")
        for line in self.extensions:
            _check_line(line, "extension line")

    def body(self) -> bytes:
        """The note text that gets signed: origin, size, base64 root, extensions; each + ``\\n``."""
        lines = [self.origin, str(self.size), b64encode(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines).encode("utf-8")

    @property
    def time(self) -> datetime | None:
        """The signed time stamp (``time`` extension line), or None when there is none."""
        stamps = [line[len(TIME_PREFIX) :] for line in self.extensions if line.startswith(TIME_PREFIX)]
        if not stamps:
            return None
        if len(stamps) > 1:
            raise SignatureError("checkpoint has more than one time line")
        return parse_time(stamps[0])

    @property
    def index(self) -> tuple[int, bytes] | None:
        """The signed (last position, digest) of the decision index (``decision-index`` line), or
        None when there is none (checkpoints signed before it existed)."""
        lines = [line[len(INDEX_PREFIX) :] for line in self.extensions if line.startswith(INDEX_PREFIX)]
        if not lines:
            return None
        if len(lines) > 1:
            raise SignatureError("checkpoint has more than one decision-index line")
        position, _, digest = lines[0].partition(" ")
        if not _SIZE_RE.fullmatch(position) or int(position) > _MAX_TREE_SIZE:
            raise SignatureError(f"checkpoint decision-index position {position!r} is not a canonical decimal number")
        raw = b64decode(digest, "checkpoint decision-index digest")
        if len(raw) != _HASH_SIZE:
            raise SignatureError(f"checkpoint decision-index digest is {len(raw)} bytes, not {_HASH_SIZE}")
        return int(position), raw

    def with_index(self, position: int, digest: bytes) -> Checkpoint:
        """The same checkpoint carrying the decision index's digest up to ``position`` (after any
        time line; an old index line is replaced)."""
        if not isinstance(digest, bytes) or len(digest) != _HASH_SIZE:
            raise ValueError(f"an index digest is {_HASH_SIZE} bytes")
        if not isinstance(position, int) or not 0 <= position <= _MAX_TREE_SIZE:
            raise ValueError("an index position is an int within 0..2**64-1")
        others = tuple(line for line in self.extensions if not line.startswith(INDEX_PREFIX))
        return replace(self, extensions=(*others, f"{INDEX_PREFIX}{position} {b64encode(digest)}"))

    def with_time(self, when: datetime) -> Checkpoint:
        """The same checkpoint stamped with ``when``; the time line replaces any old one, first."""
        others = tuple(line for line in self.extensions if not line.startswith(TIME_PREFIX))
        return replace(self, extensions=(TIME_PREFIX + format_time(when), *others))


def parse_checkpoint(body: bytes | str) -> Checkpoint:
    """Parse a checkpoint body strictly; any deviation raises ``SignatureError``.

    Strict because the body is signed: accepting two spellings of one tree would let the same
    claim carry different bytes (and ``body()`` would no longer return what was signed).
    """
    text = _note_text(body, "checkpoint body")
    if not text.endswith("\n"):
        raise SignatureError("checkpoint body must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise SignatureError("checkpoint body needs an origin, a size and a root hash line")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise SignatureError("checkpoint origin line is empty")
    if not _SIZE_RE.fullmatch(size_text):
        raise SignatureError(f"checkpoint size {size_text!r} is not a decimal number without sign or leading zeros")
    size = int(size_text)
    if size > _MAX_TREE_SIZE:
        raise SignatureError(f"checkpoint size {size_text} exceeds 2**64-1")
    root = b64decode(root_text, "checkpoint root hash")
    if len(root) != _HASH_SIZE:
        raise SignatureError(f"checkpoint root hash is {len(root)} bytes, not {_HASH_SIZE}")
    if any(not line for line in extensions):
        raise SignatureError("checkpoint body has an empty line")
    try:
        checkpoint = Checkpoint(origin, size, root, tuple(extensions))
    except ValueError as exc:  # pragma: no cover - every field was checked above
        raise SignatureError(f"malformed checkpoint: {exc}") from exc
    _ = checkpoint.time  # a malformed or repeated time line is refused here, not at first use
    _ = checkpoint.index  # likewise the decision-index line
    return checkpoint


# --- signed notes (C2SP signed-note) ----------------------------------------------------------


def _note_text(text: bytes | str, what: str) -> str:
    """Decode and check the rules every note obeys: UTF-8, no control characters but newline."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SignatureError(f"{what} is not valid UTF-8") from exc
    elif not isinstance(text, str):
        raise SignatureError(f"{what} must be text")
    if not _encodable(text):
        raise SignatureError(f"{what} is not valid UTF-8")
    for c in text:
        if ord(c) < 0x20 and c != "\n":
            raise SignatureError(f"{what} contains control character U+{ord(c):04X}")
    return text


def _signer(key: str | SignerKey) -> SignerKey:
    return key if isinstance(key, SignerKey) else SignerKey.parse(key)


def sign(checkpoint_or_body: Checkpoint | bytes | str, signer_key: str | SignerKey) -> str:
    """The signed note: body, blank line, ``— <name> <base64(key ID ‖ signature)>`` line.

    Any note text is accepted (it must end with a newline and have no blank line, which would
    make the signature block ambiguous); a ``Checkpoint`` is signed as its ``body()``.
    """
    body = checkpoint_or_body.body() if isinstance(checkpoint_or_body, Checkpoint) else checkpoint_or_body
    text = _note_text(body, "note text")
    if not text.endswith("\n") or text.startswith("\n") or "\n\n" in text:
        raise SignatureError("note text must be non-empty lines, each ending with a newline")
    key = _signer(signer_key)
    message = text.encode("utf-8")
    signature = key.key_id.to_bytes(4, "big") + key.sign(message)
    return f"{text}\n{SIG_PREFIX}{key.name} {b64encode(signature)}\n"


def _verifier_index(keys: Sequence[str | VerifierKey]) -> dict[tuple[str, int], VerifierKey]:
    if isinstance(keys, (str, bytes)):
        raise SignatureError("verifier keys must be a sequence of keys, not one string")
    index: dict[tuple[str, int], VerifierKey] = {}
    for key in keys:
        parsed = key if isinstance(key, VerifierKey) else VerifierKey.parse(key)
        slot = (parsed.name, parsed.key_id)
        if slot in index and index[slot] != parsed:
            # note.VerifierList calls this ambiguous: two keys claim the same name and ID.
            raise SignatureError(f"two different verifier keys are named {parsed.name}+{parsed.key_id:08x}")
        index[slot] = parsed
    return index


def open_signed_note(text: bytes | str, verifier_keys: Sequence[str | VerifierKey]) -> tuple[str, list[str]]:
    """Check a signed note; return its text (with final newline) and the names that verified.

    Mirrors ``note.Open``: signatures by unknown keys are skipped, a known key's bad signature is
    an error, and no verified signature at all is an error.
    """
    known = _verifier_index(verifier_keys)
    note = _note_text(text, "signed note")
    split = note.rfind("\n\n")
    if split < 0:
        raise SignatureError("malformed note: no blank line before the signatures")
    body, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise SignatureError("malformed note: no signature lines after the blank line")
    if not block.endswith("\n"):
        raise SignatureError("malformed note: the signature block must end with a newline")
    message = body.encode("utf-8")
    verified: list[str] = []
    seen: set[tuple[str, int]] = set()
    unknown: list[str] = []
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise SignatureError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    for number, line in enumerate(lines, 1):
        if not line.startswith(SIG_PREFIX):
            raise SignatureError(f"malformed note: signature line {number} does not start with '— ' (U+2014)")
        name, _, b64 = line[len(SIG_PREFIX) :].partition(" ")
        if not _is_valid_name(name) or not b64:
            raise SignatureError(f"malformed note: signature line {number} has no valid name and signature")
        raw = b64decode(b64, f"signature line {number}")
        if len(raw) < 5:
            raise SignatureError(f"malformed note: signature line {number} is too short")
        kid, signature = int.from_bytes(raw[:4], "big"), raw[4:]
        key = known.get((name, kid))
        if key is None:
            unknown.append(f"{name}+{kid:08x}")
            continue
        if (name, kid) in seen:
            continue
        seen.add((name, kid))
        if not key.verify(message, signature):
            raise SignatureError(f"invalid signature by {name}+{kid:08x}: the note was altered or forged")
        verified.append(name)
    if not verified:
        signers = ", ".join(dict.fromkeys(unknown)) or "none"
        raise SignatureError(f"no signature by a known key (signed by: {signers})")
    return body, verified


def open_note(text: bytes | str, verifier_keys: Sequence[str | VerifierKey]) -> tuple[Checkpoint, list[str]]:
    """Verify a signed checkpoint; return it and the names of the keys whose signatures verified."""
    body, names = open_signed_note(text, verifier_keys)
    return parse_checkpoint(body), names
