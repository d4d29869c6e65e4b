"""Signed checkpoints: interoperability with golang.org/x/mod/sumdb/note and strict refusals.

The published examples below come from the documentation of golang.org/x/mod/sumdb/note (the
PeterNeumann key pair, its signed message and EnochRoot's cosignature) and from the C2SP
signed-note specification (example.com/foo). Ed25519 is deterministic (RFC 8032), so signing the
same text with the published signer key must reproduce the published note byte for byte: that is
the proof that a Go verifier accepts our notes, and that we accept Go's.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ledger.checkpoints import (
    MAX_ORIGIN_BYTES,
    Checkpoint,
    SignerKey,
    VerifierKey,
    check_origin,
    format_time,
    generate_key,
    key_id,
    note_signers,
    open_note,
    open_signed_note,
    parse_checkpoint,
    parse_time,
    sign,
    verifier_from_signer,
)
from ledger.errors import LedgerError, SignatureError

EM = "\u2014"

# golang.org/x/mod/sumdb/note package documentation.
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    f"{EM} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    f"{EM} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)
GO_NOTE = GO_TEXT + "\n" + PETER_SIG

# c2sp.org/signed-note example.
FOO_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
FOO_NOTE = (
    "This is an example message.\n\n"
    f"{EM} example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

ROOT = hashlib.sha256(b"some tree").digest()
WHEN = datetime(2026, 11, 24, 9, 37, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return generate_key("ledger.example/log")


@pytest.fixture(scope="module")
def signed(keys: tuple[str, str]) -> str:
    return sign(Checkpoint("ledger.example/log", 42, ROOT).with_time(WHEN), keys[0])


# --- interoperability with the published examples ---------------------------------------------


def test_key_id_recomputed_by_hand() -> None:
    name, hex_id, material = PETER_VKEY.split("+", 2)
    encoded = base64.b64decode(material)
    assert encoded[0] == 0x01 and len(encoded) == 33
    digest = hashlib.sha256(name.encode() + b"\x0a" + encoded).digest()
    assert digest[:4].hex() == hex_id == "c74f20a3"
    assert key_id(name, encoded[1:]) == int.from_bytes(digest[:4], "big") == 0xC74F20A3


def test_published_signer_key_derives_published_verifier_key() -> None:
    assert verifier_from_signer(PETER_SKEY) == PETER_VKEY
    signer = SignerKey.parse(PETER_SKEY)
    assert signer.encode() == PETER_SKEY
    assert VerifierKey.parse(PETER_VKEY) == signer.verifier()


def test_signing_reproduces_the_published_note() -> None:
    assert sign(GO_TEXT, PETER_SKEY) == GO_NOTE
    assert sign(GO_TEXT.encode(), SignerKey.parse(PETER_SKEY)) == GO_NOTE


def test_published_notes_verify() -> None:
    assert open_signed_note(GO_NOTE, [PETER_VKEY]) == (GO_TEXT, ["PeterNeumann"])
    assert open_signed_note(FOO_NOTE, [FOO_VKEY]) == (
        "This is an example message.\n",
        ["example.com/foo"],
    )
    both = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert open_signed_note(both, [PETER_VKEY, ENOCH_VKEY]) == (
        GO_TEXT,
        ["PeterNeumann", "EnochRoot"],
    )
    # A signature by a key the caller does not know is skipped, as note.Open does (a witness
    # may have cosigned): each key alone still verifies its own signature.
    assert open_signed_note(both, [ENOCH_VKEY])[1] == ["EnochRoot"]
    assert open_signed_note(both.encode(), [PETER_VKEY])[1] == ["PeterNeumann"]


def test_published_note_altered_by_one_letter_fails() -> None:
    with pytest.raises(SignatureError, match="invalid signature by PeterNeumann"):
        open_signed_note(GO_NOTE.replace("cryptography", "cryptographY"), [PETER_VKEY])


def test_upper_case_key_id_is_accepted_like_go() -> None:
    upper = PETER_VKEY.replace("c74f20a3", "C74F20A3")
    assert VerifierKey.parse(upper).encode() == PETER_VKEY


def test_a_note_that_is_not_a_checkpoint_is_refused_by_open_note() -> None:
    with pytest.raises(SignatureError, match="size"):
        open_note(GO_NOTE, [PETER_VKEY])


# --- round trip -------------------------------------------------------------------------------


def test_generated_keys_have_the_note_formats(keys: tuple[str, str]) -> None:
    skey, vkey = keys
    prefix, key_word, name, hex_id, seed64 = skey.split("+", 4)
    assert (prefix, key_word, name) == ("PRIVATE", "KEY", "ledger.example/log")
    vname, vhex, pub64 = vkey.split("+", 2)
    assert (vname, vhex) == (name, hex_id)
    seed, pub = base64.b64decode(seed64), base64.b64decode(pub64)
    assert seed[0] == pub[0] == 0x01 and len(seed) == len(pub) == 33
    by_hand = hashlib.sha256(name.encode() + b"\n" + pub).digest()[:4].hex()
    assert hex_id == by_hand
    assert verifier_from_signer(skey) == vkey
    assert generate_key("ledger.example/log") != keys  # fresh randomness every time


def test_round_trip(keys: tuple[str, str], signed: str) -> None:
    checkpoint, names = open_note(signed, [keys[1]])
    assert names == ["ledger.example/log"]
    assert checkpoint == Checkpoint("ledger.example/log", 42, ROOT, ("time 2026-11-24T09:37:05Z",))
    assert checkpoint.time == WHEN
    root64 = base64.b64encode(ROOT).decode()
    body = f"ledger.example/log\n42\n{root64}\ntime 2026-11-24T09:37:05Z\n"
    assert checkpoint.body() == body.encode()
    assert signed.startswith(body + "\n" + EM + " ledger.example/log ")
    assert signed.endswith("\n") and signed.count("\n") == 6


def test_cosigned_checkpoint(keys: tuple[str, str], signed: str) -> None:
    witness_skey, witness_vkey = generate_key("witness.example")
    checkpoint, _ = open_note(signed, [keys[1]])
    cosig = sign(checkpoint, witness_skey).split("\n\n", 1)[1]
    both = signed + cosig
    assert open_note(both, [keys[1], witness_vkey])[1] == ["ledger.example/log", "witness.example"]
    # A duplicated signature line is counted once.
    assert open_note(both + cosig, [witness_vkey])[1] == ["witness.example"]


# --- refusals ---------------------------------------------------------------------------------


def test_wrong_key_is_refused(signed: str) -> None:
    _, other_vkey = generate_key("ledger.example/log")
    with pytest.raises(SignatureError, match="no signature by a known key"):
        open_note(signed, [other_vkey])
    with pytest.raises(SignatureError, match="no signature by a known key"):
        open_note(signed, [])


def test_same_name_and_key_id_with_a_bad_signature_is_refused(keys: tuple[str, str]) -> None:
    body = Checkpoint("ledger.example/log", 1, ROOT).body()
    forged = body.decode() + "\n" + f"{EM} ledger.example/log "
    forged += base64.b64encode(SignerKey.parse(keys[0]).key_id.to_bytes(4, "big") + b"\0" * 64).decode()
    with pytest.raises(SignatureError, match="invalid signature"):
        open_note(forged + "\n", [keys[1]])


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("\n42\n", "\n43\n"),
        ("ledger.example/log\n", "ledger.example/lag\n"),
        ("09:37:05Z", "09:37:06Z"),
    ],
)
def test_altered_body_is_refused(keys: tuple[str, str], signed: str, old: str, new: str) -> None:
    assert old in signed
    with pytest.raises(SignatureError, match="invalid signature"):
        open_note(signed.replace(old, new, 1), [keys[1]])


def test_altered_signature_is_refused(keys: tuple[str, str], signed: str) -> None:
    body, line = signed.rsplit("\n\n", 1)
    prefix, b64 = line.rstrip("\n").rsplit(" ", 1)
    raw = base64.b64decode(b64)
    for i in (4, 20, len(raw) - 1):  # signature bytes, not the key ID
        bad = raw[:i] + bytes([raw[i] ^ 0x80]) + raw[i + 1 :]
        note = f"{body}\n\n{prefix} {base64.b64encode(bad).decode()}\n"
        with pytest.raises(SignatureError, match="invalid signature"):
            open_note(note, [keys[1]])
    truncated = f"{body}\n\n{prefix} {base64.b64encode(raw[:-1]).decode()}\n"
    with pytest.raises(SignatureError, match="invalid signature"):
        open_note(truncated, [keys[1]])
    other_id = f"{body}\n\n{prefix} {base64.b64encode(b'XXXX' + raw[4:]).decode()}\n"
    with pytest.raises(SignatureError, match="no signature by a known key"):
        open_note(other_id, [keys[1]])


def _malformed(signed: str) -> dict[str, object]:
    body, sigs = signed.split("\n\n")
    sig_line = sigs.rstrip("\n")
    name_and_b64 = sig_line[2:]
    cases: list[tuple[str, object]] = [
        ("no-blank-line", body + "\n" + sigs),
        ("no-final-newline", signed.rstrip("\n")),
        ("no-signatures", body + "\n\n"),
        ("hyphen-instead-of-em-dash", body + "\n\n- " + name_and_b64 + "\n"),
        ("en-dash", body + "\n\n\u2013 " + name_and_b64 + "\n"),
        ("no-space-after-dash", body + "\n\n" + EM + name_and_b64 + "\n"),
        ("blank-line-in-signatures", signed + "\n"),
        ("crlf", signed.replace("\n", "\r\n")),
        ("tab", signed.replace("log\n42", "log\t\n42")),
        ("nul", "\0" + signed),
        ("not-utf8", signed.encode() + b"\xff"),
        ("bad-base64", signed.replace("=\n", "!\n")),
        ("unpadded-base64", signed.replace("=\n", "\n")),
        ("short-signature", body + f"\n\n{EM} ledger.example/log AAAAAA==\n"),
        ("no-signature-text", body + f"\n\n{EM} ledger.example/log\n"),
        ("name-with-plus", body + f"\n\n{EM} a+b {name_and_b64.split(' ', 1)[1]}\n"),
        ("too-many-signatures", body + "\n\n" + (sig_line + "\n") * 101),
        ("trailing-garbage", signed + "garbage"),
        ("not-text", 42),
    ]
    return dict(cases)


MALFORMED = list(_malformed(f"o\n1\nroot\n\n{EM} o AAAAAAAA\n"))


@pytest.mark.parametrize("label", MALFORMED)
def test_malformed_notes_are_refused(keys: tuple[str, str], signed: str, label: str) -> None:
    note = _malformed(signed)[label]
    with pytest.raises(SignatureError):
        open_note(note, [keys[1]])  # type: ignore[arg-type]  # some cases are not even text


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("o\n1\n{root}", "newline"),
        ("\n1\n{root}\n", "origin"),
        ("o\n{root}\n", "needs"),
        ("o\n01\n{root}\n", "leading zeros"),
        ("o\n+1\n{root}\n", "sign"),
        ("o\n-1\n{root}\n", "sign"),
        ("o\n 1\n{root}\n", "sign"),
        ("o\n1_0\n{root}\n", "sign"),
        ("o\n\u0661\n{root}\n", "sign"),
        ("o\n18446744073709551616\n{root}\n", "2\\*\\*64"),
        ("o\n1\n{short}\n", "31 bytes"),
        ("o\n1\n{long}\n", "33 bytes"),
        ("o\n1\n{hex}\n", "48 bytes"),
        ("o\n1\n{urlsafe}\n", "base64"),
        ("o\n1\n{noncanonical}\n", "canonical"),
        ("o\n1\n{root}\n\nx\n", "empty line"),
        ("o\n1\n{root}\ntime yesterday\n", "RFC 3339"),
        ("o\n1\n{root}\ntime 2026-11-24T09:37:05+00:00\n", "RFC 3339"),
        ("o\n1\n{root}\ntime 2026-11-24T09:37:05.500Z\n", "canonical"),
        ("o\n1\n{root}\ntime 2026-02-30T09:37:05Z\n", "valid date"),
        ("o\n1\n{root}\ntime 2026-11-24T09:37:05Z\ntime 2026-11-24T09:37:05Z\n", "more than one"),
        ("o\x01\n1\n{root}\n", "control"),
    ],
)
def test_parse_checkpoint_is_strict(body: str, reason: str) -> None:
    b64 = base64.b64encode
    text = body.format(
        root=b64(ROOT).decode(),
        short=b64(ROOT[:31]).decode(),
        long=b64(ROOT + b"\0").decode(),
        hex=ROOT.hex(),
        urlsafe="-_" + b64(ROOT).decode()[2:],  # the URL-safe alphabet is not standard base64
        noncanonical=b64(ROOT).decode()[:-2] + "F=",  # unused low bits set
    )
    with pytest.raises(SignatureError, match=reason):
        parse_checkpoint(text)


def test_parse_checkpoint_accepts_what_it_should() -> None:
    root64 = base64.b64encode(ROOT).decode()
    cp = parse_checkpoint(f"example.com/log\n0\n{root64}\n".encode())
    assert cp == Checkpoint("example.com/log", 0, ROOT) and cp.time is None
    ext = parse_checkpoint(f"example.com/log\n18446744073709551615\n{root64}\nx y z\n\u00e9\n")
    assert ext.size == 2**64 - 1 and ext.extensions == ("x y z", "\u00e9")
    assert parse_checkpoint(ext.body()) == ext


@pytest.mark.parametrize(
    "key",
    [
        "",
        "PeterNeumann",
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong key ID
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # 7 hex digits
        "PeterNeumann+c74f20ag+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+Alpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # algorithm 0x02
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",  # too short
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW!",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        PETER_SKEY,  # a signer key is not a verifier key
    ],
)
def test_malformed_verifier_keys_are_refused(key: str) -> None:
    with pytest.raises(SignatureError):
        VerifierKey.parse(key)
    with pytest.raises(SignatureError):
        open_signed_note(GO_NOTE, [key])


@pytest.mark.parametrize(
    "key",
    [
        PETER_VKEY,
        "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AoEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXH",
        "PRIVATE+KEY+Peter\tNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PUBLIC+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
    ],
)
def test_malformed_signer_keys_are_refused(key: str) -> None:
    with pytest.raises(SignatureError) as info:
        SignerKey.parse(key)
    assert "AYEKFALVFGyNhPJEMzD1QIDr" not in str(info.value)  # never echo a secret
    with pytest.raises(SignatureError):
        sign(GO_TEXT, key)


def test_ambiguous_verifier_keys_are_refused() -> None:
    peter = VerifierKey.parse(PETER_VKEY)
    impostor = VerifierKey(peter.name, peter.key_id, bytes(32))
    assert open_signed_note(GO_NOTE, [PETER_VKEY, peter])[1] == ["PeterNeumann"]  # same key twice
    with pytest.raises(SignatureError, match="two different verifier keys"):
        open_signed_note(GO_NOTE, [peter, impostor])
    with pytest.raises(SignatureError, match="sequence"):
        open_signed_note(GO_NOTE, PETER_VKEY)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\nb", "\u00a0x", "x\u2003", "\ud800"])
def test_invalid_key_names_are_refused(name: str) -> None:
    with pytest.raises(SignatureError, match="invalid key name"):
        generate_key(name)


@pytest.mark.parametrize("text", ["no newline", "\n", "a\n\nb\n", "tab\there\n", "nul\0\n"])
def test_sign_refuses_text_that_would_not_open(text: str) -> None:
    with pytest.raises(SignatureError):
        sign(text, PETER_SKEY)


def test_errors_belong_to_the_ledger_hierarchy() -> None:
    assert issubclass(SignatureError, LedgerError)
    with pytest.raises(LedgerError):
        open_note("garbage", [PETER_VKEY])


def test_signer_key_repr_hides_the_seed() -> None:
    signer = SignerKey.parse(PETER_SKEY)
    assert "PeterNeumann" in repr(signer)
    assert "seed" not in repr(signer) and repr(signer.seed) not in repr(signer)


# --- checkpoints and time ---------------------------------------------------------------------


def test_time_formatting_is_canonical() -> None:
    assert format_time(WHEN) == "2026-11-24T09:37:05Z"
    assert format_time(WHEN.replace(microsecond=500000)) == "2026-11-24T09:37:05.5Z"
    assert format_time(WHEN.replace(microsecond=1)) == "2026-11-24T09:37:05.000001Z"
    plus8 = WHEN.astimezone(timezone(timedelta(hours=8)))
    assert format_time(plus8) == "2026-11-24T09:37:05Z"  # converted to UTC
    assert format_time(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00Z"
    for when in (WHEN, WHEN.replace(microsecond=123450), datetime(1, 1, 1, tzinfo=UTC)):
        assert parse_time(format_time(when)) == when
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime(2026, 11, 24))  # naive: the zone would be a guess


def test_with_time_replaces_the_previous_stamp() -> None:
    cp = Checkpoint("o", 1, ROOT, ("other",)).with_time(WHEN)
    assert cp.extensions == ("time 2026-11-24T09:37:05Z", "other")
    later = cp.with_time(WHEN + timedelta(seconds=1))
    assert later.extensions == ("time 2026-11-24T09:37:06Z", "other")
    assert later.time == WHEN + timedelta(seconds=1)


def test_the_decision_index_line_is_an_extension_kept_and_signed() -> None:
    """C2SP lets extension lines follow the root hash; the index line is one, after the time."""
    digest = hashlib.sha256(b"rows").digest()
    cp = Checkpoint("o", 9, ROOT).with_index(9, digest).with_time(WHEN)
    line = "decision-index 9 " + base64.b64encode(digest).decode()
    assert cp.extensions == ("time 2026-11-24T09:37:05Z", line)
    assert cp.body().decode().endswith(f"\n{line}\n")
    skey, vkey = generate_key("k")
    opened = open_note(sign(cp, skey), [vkey])[0]
    assert opened == cp and opened.index == (9, digest) and opened.time == WHEN
    assert Checkpoint("o", 9, ROOT).index is None  # a checkpoint signed before the line existed
    assert cp.with_index(10, digest).index == (10, digest)  # replaced, not repeated


@pytest.mark.parametrize(
    "line",
    [
        "decision-index 09 " + base64.b64encode(ROOT).decode(),
        "decision-index +9 " + base64.b64encode(ROOT).decode(),
        "decision-index 9 " + base64.b64encode(ROOT[:31]).decode(),
        "decision-index 9 not-base64",
        "decision-index 9",
    ],
)
def test_a_malformed_decision_index_line_is_refused(line: str) -> None:
    body = f"o\n9\n{base64.b64encode(ROOT).decode()}\n{line}\n"
    with pytest.raises(SignatureError, match="decision-index"):
        parse_checkpoint(body)
    twice = Checkpoint("o", 9, ROOT, ("decision-index 1 " + base64.b64encode(ROOT).decode(),) * 2)
    with pytest.raises(SignatureError, match="more than one decision-index line"):
        parse_checkpoint(twice.body())


@pytest.mark.parametrize(
    "fields",
    [
        ("", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        ("o", -1, ROOT, ()),
        ("o", 2**64, ROOT, ()),
        ("o", 1, ROOT[:31], ()),
        ("o", 1, ROOT.hex(), ()),
        ("o", 1, ROOT, ("",)),
        ("o", 1, ROOT, ("a\nb",)),
    ],
)
def test_impossible_checkpoints_cannot_be_built(fields: tuple[object, ...]) -> None:
    with pytest.raises(ValueError):
        Checkpoint(*fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("fields", [("o", True, ROOT, ()), ("o", "1", ROOT, ()), ("o", 1, ROOT, ["x"])])
def test_wrongly_typed_checkpoints_cannot_be_built(fields: tuple[object, ...]) -> None:
    with pytest.raises(TypeError):
        Checkpoint(*fields)  # type: ignore[arg-type]


# --- what the ledger signs under, and who a note says signed it ------------------------------


def test_check_origin_follows_c2sp() -> None:
    """tlog-checkpoint: non-empty, no Unicode space or '+'; signed-note: no control character;
    tlog-cosignature: an origin of at most 255 bytes."""
    assert check_origin("example.org/ledger") == "example.org/ledger"
    assert check_origin("卫健委.中国/" + "x" * (MAX_ORIGIN_BYTES - 17)) is not None  # 255 bytes of UTF-8
    for bad in ("", "a b", "a\u3000b", "a+b", "a\nb", "a\x00b", "a\x7fb", "a\x85b", "a\u202eb", "a\u200bb", "\ud800"):
        with pytest.raises(ValueError, match="origin"):
            check_origin(bad)
    with pytest.raises(ValueError, match="256 bytes"):
        check_origin("卫健委.中国/" + "x" * (MAX_ORIGIN_BYTES - 16))


def test_note_signers_names_every_signature_line() -> None:
    first, second = generate_key("log.example/a"), generate_key("witness.example/w")
    note = sign(Checkpoint("log.example/a", 3, b"\x01" * 32), first[0])
    cosigned = note + sign(Checkpoint("log.example/a", 3, b"\x01" * 32), second[0]).split("\n\n", 1)[1]
    a, b = SignerKey.parse(first[0]), SignerKey.parse(second[0])
    assert note_signers(cosigned) == [(a.name, a.key_id), (b.name, b.key_id)]
    for broken in (note.split("\n\n")[0], note.replace("\u2014 ", "- "), note[:-10] + "\n"):
        with pytest.raises(SignatureError):
            note_signers(broken)
