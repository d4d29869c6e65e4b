"""``verify-proof`` is total: whatever a proof file holds, a clean answer, never a traceback.

A valid bundle is made by ``ledger prove`` on a small ledger with a signed checkpoint; hypothesis
then mutates it byte by byte (flip, insert, delete), field by field (other types, other numbers,
other base64, fields removed or added), with duplicate keys and with deep nesting, and checks:

* ``verify_proof`` never raises, and ``report.check()`` raises only the ledger's errors (exit 9,
  10 or 11); ``ledger verify-proof`` exits 0, 9, 10 or 11 and prints no traceback;
* a bundle it accepts shows exactly the signed decision, position, tree size and root;
* a key twice in any object, or nesting deeper than ``MAX_BUNDLE_DEPTH``, is refused as no bundle
  (a JSON reader may show the first of two ``note`` values, the verifier the last);
* a leaf is decoded only once it is in the signed tree, and a crafted leaf in a tree signed by a
  trusted key (any bytes, any topic, any state) is a problem in the report, not a traceback.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgpack
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from cli import cli
from ledger import canonical, integrity, merkle
from ledger.checkpoints import Checkpoint, open_note, sign
from ledger.decisions import record_from_state
from ledger.errors import IntegrityError, LedgerError, MalformedProof, SignatureError
from ledger.integrity import MAX_BUNDLE_DEPTH, leaf_bytes, parse_leaf, verify_proof
from ledger.integrity import bundle as bundle_module
from ledger.topics import read_state
from ledger.transcoder import MsgpackTranscoder

SETTINGS = settings(max_examples=150)

FILE = [
    {
        "id": "I-1",
        "kind": "institution.registered",
        "effective": "2003-09-18",
        "by": "长沙市卫生局",
        "institution": "44860321X43010211A1001",
        "name": "湘江示范医院",
        "province": "湖南省",
        "city": "长沙市",
        "category": "医院",
        "level": "三级",
        "licensing_authority": "长沙市卫生健康委员会",
    },
    {
        "id": "PEN-1",
        "kind": "penalty.imposed",
        "effective": "2022-08-02",
        "by": "湖南省卫生健康委员会",
        "basis": "MTM-2018#37",
        "note": "未按期整改",
        "institution": "44860321X43010211A1001",
        "amount_yuan": 1500.50,
        "reason": "未按期整改",
        "local.memo": {"rows": [1, "二", None]},
    },
    {
        "id": "I-2",
        "kind": "institution.registered",
        "effective": "2005-01-04",
        "by": "长沙市卫生局",
        "institution": "44953360243030211A1001",
        "name": "岳麓示范医院",
        "province": "湖南省",
        "city": "长沙市",
        "category": "医院",
        "level": "二级",
        "licensing_authority": "长沙市卫生健康委员会",
    },
]


@dataclass(frozen=True)
class Signed:
    """A proof bundle ``ledger prove`` wrote, and the facts it was made from."""

    text: str
    bundle: dict[str, Any]
    decision: str  # canonical, key-sorted
    position: int
    checkpoint: Checkpoint
    signer: str
    verifier: str
    verifier_file: Path


def _run(*args: str) -> Result:
    return CliRunner(env={"LEDGER_DB": None, "LEDGER_KEY": None, "LEDGER_ORIGIN": None}).invoke(
        cli, list(args), catch_exceptions=False
    )


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signed]:
    tmp = tmp_path_factory.mktemp("bundles")
    db, key = str(tmp / "ledger.sqlite"), tmp / "ledger.key"
    decisions = tmp / "d.jsonl"
    decisions.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in FILE), encoding="utf-8")
    assert _run("keygen", "--name", "test-ledger", "-o", str(key)).exit_code == 0
    assert _run("--db", db, "import", str(decisions)).exit_code == 0
    assert _run("--db", db, "checkpoint", "--key", str(key)).exit_code == 0
    proof = tmp / "PEN-1.proof.json"
    result = _run("--db", db, "prove", "PEN-1", "-o", str(proof))
    assert result.exit_code == 0, result.stderr
    text = proof.read_text(encoding="utf-8")
    bundle = integrity.load_bundle(text)
    verifier = Path(f"{key}.pub").read_text(encoding="utf-8").strip()
    checkpoint, _ = open_note(bundle["checkpoint"], [verifier])
    yield Signed(
        text=text,
        bundle=bundle,
        decision=canonical.dumps(bundle["decision"], sort_keys=True),
        position=bundle["position"],
        checkpoint=checkpoint,
        signer=key.read_text(encoding="utf-8").strip(),
        verifier=verifier,
        verifier_file=Path(f"{key}.pub"),
    )


def _judge(signed: Signed, data: str | bytes) -> integrity.ProofReport:
    """Verify ``data``; accepted, it must be the signed decision at the signed place."""
    report = verify_proof(data, [signed.verifier])
    if report.ok:
        accepted = integrity.load_bundle(data)
        assert canonical.dumps(accepted["decision"], sort_keys=True) == signed.decision
        assert accepted["position"] == report.position == signed.position
        assert accepted["tree_size"] == report.tree_size == signed.checkpoint.size
        cp, _ = open_note(accepted["checkpoint"], [signed.verifier])
        assert (cp.origin, cp.size, cp.root) == (
            signed.checkpoint.origin,
            signed.checkpoint.size,
            signed.checkpoint.root,
        )
        assert report.decision_id == "PEN-1"
        report.check()
    else:
        with pytest.raises(LedgerError) as refused:
            report.check()
        assert type(refused.value) in (IntegrityError, SignatureError, MalformedProof)
    return report


def test_the_bundle_ledger_prove_wrote_verifies(signed: Signed) -> None:
    report = _judge(signed, signed.text)
    assert report.ok and report.signers == ["test-ledger"]
    assert (report.position, report.leaf_index, report.tree_size) == (2, 1, 3)


# --- byte by byte -------------------------------------------------------------------------------

EDITS = st.lists(
    st.tuples(st.sampled_from(["flip", "insert", "delete", "set"]), st.integers(min_value=0), st.integers(0, 255)),
    min_size=1,
    max_size=4,
)


def _edit(data: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(data)
    for op, offset, byte in edits:
        at = offset % (len(out) + 1)
        if op == "insert":
            out[at:at] = bytes([byte])
        elif out and at < len(out):
            if op == "flip":
                out[at] ^= 1 << (byte % 8)
            elif op == "set":
                out[at] = byte
            else:
                del out[at]
    return bytes(out)


@SETTINGS
@given(edits=EDITS)
def test_bytes_flipped_inserted_or_deleted_never_give_a_traceback_or_another_decision(
    signed: Signed, edits: list[tuple[str, int, int]]
) -> None:
    _judge(signed, _edit(signed.text.encode("utf-8"), edits))


@SETTINGS
@given(edits=EDITS, at=st.integers(min_value=0))
def test_bytes_edited_inside_one_field_are_refused_or_harmless(
    signed: Signed, edits: list[tuple[str, int, int]], at: int
) -> None:
    """Edits aimed at one field's text (a random place lands mostly in the long base64 strings)."""
    names = sorted(signed.bundle)
    name = names[at % len(names)]
    text = signed.text.encode("utf-8")
    start = text.index(f'"{name}":'.encode())
    end = start + len(canonical.dumps({name: signed.bundle[name]}).encode("utf-8")) - 2
    _judge(signed, text[:start] + _edit(text[start:end], edits) + text[end:])


# --- field by field ------------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


NESTED = st.integers(1, 3 * MAX_BUNDLE_DEPTH).map(lambda n: json.loads("[" * n + "]" * n))
OTHER_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=2**66),
    st.integers(-3, 3),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.binary(max_size=80).map(_b64),
    st.binary(min_size=32, max_size=32).map(_b64),
    st.binary(min_size=1, max_size=40).map(lambda b: _b64(b).rstrip("=") or "A"),  # not padded
    st.binary(min_size=1, max_size=40).map(lambda b: " " + _b64(b)),
    st.lists(st.one_of(st.integers(), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
    NESTED,
)


@st.composite
def field_edits(draw: Any, bundle: dict[str, Any]) -> dict[str, Any]:
    """The bundle with one value replaced, removed or added: at the top, in the decision, in the
    proof's list of hashes; the value another field's, an offset number, or any of ``OTHER_VALUES``."""
    out = json.loads(canonical.dumps(bundle), parse_float=Decimal)
    where = draw(st.sampled_from(["top", "decision", "proof"]))
    target: Any = out if where == "top" else out["decision"] if where == "decision" else out["inclusion_proof"]
    keys: list[Any] = list(target) if isinstance(target, dict) else list(range(len(target)))
    key = draw(st.sampled_from([*keys, "unknown"]) if keys else st.just("unknown"))
    if key == "unknown" and isinstance(target, list):
        target.append(draw(OTHER_VALUES))
        return out
    op = draw(st.sampled_from(["replace", "replace", "remove", "swap", "offset"]))
    if op == "remove" and key != "unknown":
        del target[key]
    elif op == "swap":
        target[key] = json.loads(canonical.dumps(draw(st.sampled_from(list(out.values())))), parse_float=Decimal)
    elif op == "offset" and key != "unknown" and type(target[key]) is int:
        target[key] += draw(st.integers(-5, 5))
    elif key == "unknown" or isinstance(target, dict):
        target[key] = draw(OTHER_VALUES)
    else:
        target[key] = draw(OTHER_VALUES)
    return out


@SETTINGS
@given(data=st.data())
def test_a_field_replaced_removed_or_added_is_refused_or_harmless(signed: Signed, data: st.DataObject) -> None:
    mutated = data.draw(field_edits(signed.bundle))
    from_file = _judge(signed, canonical.dumps(mutated))
    in_memory = verify_proof(mutated, [signed.verifier])  # the same, as a mapping in memory
    assert (in_memory.ok, in_memory.problems) == (from_file.ok, from_file.problems)


# --- duplicate keys and deep nesting ----------------------------------------------------------


@SETTINGS
@given(
    where=st.sampled_from(["top", "decision"]),
    at=st.integers(min_value=0),
    value=st.one_of(st.just("same"), st.just("forged"), OTHER_VALUES),
    first=st.booleans(),
)
def test_a_key_twice_in_an_object_is_no_bundle(signed: Signed, where: str, at: int, value: Any, first: bool) -> None:
    """``{"note": "forged", …, "note": "real"}``: some readers show the first, the verifier read the
    last. Whichever value, before or after, the file is refused."""
    obj = signed.bundle if where == "top" else signed.bundle["decision"]
    key = sorted(obj)[at % len(obj)]
    if value == "same":
        value = obj[key]
    pair = canonical.dumps({key: value})[1:-1]
    text = signed.text
    if where == "top":
        text = "{" + pair + "," + text[1:] if first else text.rstrip()[:-1] + "," + pair + "}"
    else:
        opening = text.index('"decision":{') + len('"decision":{')
        text = text[:opening] + pair + "," + text[opening:]
    report = _judge(signed, text)
    assert report.malformed is not None
    assert "appears twice" in report.malformed or "levels deep" in report.malformed  # a nested value: deeper


def test_a_forged_note_shown_first_is_refused(signed: Signed) -> None:
    opening = signed.text.index('"decision":{') + len('"decision":{')
    forged = signed.text[:opening] + '"note":"已按期整改，不予处罚",' + signed.text[opening:]
    report = verify_proof(forged, [signed.verifier])
    assert not report.ok and report.decision_id is None
    assert report.malformed == "the proof file is not a bundle: field 'note': the field appears twice in one object"


@SETTINGS
@given(depth=st.integers(1, 300_000), where=st.sampled_from(["top", "decision", "whole", "string"]))
def test_nesting_of_any_depth_is_refused_without_exhausting_the_stack(signed: Signed, depth: int, where: str) -> None:
    nested = "[" * depth + "]" * depth
    text = signed.text
    if where == "top":
        text = '{"extra":' + nested + "," + text[1:]
    elif where == "decision":
        opening = text.index('"decision":{') + len('"decision":{')
        text = text[:opening] + '"hunan.deep":' + nested + "," + text[opening:]
    elif where == "whole":
        text = nested
    else:  # brackets inside a string are text, not nesting
        text = '{"extra":"' + nested + '",' + text[1:]
    report = _judge(signed, text)
    assert not report.ok
    if where != "string" and depth + (where != "whole") + (where == "decision") > MAX_BUNDLE_DEPTH:
        assert report.malformed is not None and "levels deep" in report.malformed
    if where == "string":
        assert report.malformed == "the bundle has unknown fields 'extra'"


# --- crafted leaves in a tree a trusted key signed -----------------------------------------------

TOPICS = st.one_of(
    st.sampled_from(["ledger.events:PenaltyImposed", "ledger.events:InstitutionRegistered", "this:s", "os:system"]),
    st.text(max_size=30),
)
STATES = st.one_of(
    st.binary(max_size=120),
    st.dictionaries(
        st.text(max_size=12), st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=5)), max_size=14
    ).map(msgpack.packb),
)


@st.composite
def crafted_leaves(draw: Any, real: bytes) -> bytes:
    """Leaf bytes the ledger never wrote: the real one edited, or any topic and state framed as a
    leaf (the framing itself sometimes cut short or lengthened)."""
    if draw(st.booleans()):
        return _edit(real, draw(EDITS))
    leaf = parse_leaf(real)
    data = leaf_bytes(
        draw(st.sampled_from([leaf.position, 0, 2**64 - 1])),
        leaf.originator_id,
        draw(st.sampled_from([leaf.originator_version, 0])),
        draw(TOPICS),
        draw(STATES) if draw(st.booleans()) else _edit(leaf.state, draw(EDITS)),
    )
    return data if draw(st.booleans()) else data[: draw(st.integers(0, len(data)))]


@SETTINGS
@given(data=st.data())
def test_a_crafted_leaf_under_a_trusted_signature_is_a_problem_not_a_traceback(
    signed: Signed, data: st.DataObject
) -> None:
    """The signer's key vouches for a one-leaf tree of crafted bytes (the worst case: the key is
    trusted, the leaf hostile). Decoding it must fail cleanly or show exactly what it holds."""
    real = base64.b64decode(signed.bundle["leaf"])
    leaf = data.draw(crafted_leaves(real))
    note = sign(Checkpoint(signed.checkpoint.origin, 1, merkle.leaf_hash(leaf)), signed.signer)
    bundle = {
        **signed.bundle,
        "leaf": _b64(leaf),
        "leaf_index": 0,
        "tree_size": 1,
        "inclusion_proof": [],
        "checkpoint": note,
        "tlog_proof": integrity.tlog_proof_text(0, [], note, leaf),
    }
    report = verify_proof(canonical.dumps(bundle), [signed.verifier])
    assert report.malformed is None and report.signature_problem is None
    if report.ok:  # only if the crafted bytes hold the very decision shown, where it is shown
        parsed = parse_leaf(leaf)
        cls, state = read_state(parsed.topic, parsed.state, MsgpackTranscoder().decode)
        shown = record_from_state(cls.kind, state).to_json_dict()
        assert canonical.dumps(shown, sort_keys=True) == signed.decision
        assert parsed.position == report.position == signed.position and report.decision_id == "PEN-1"
    else:
        assert report.decision_id is None
        with pytest.raises(IntegrityError):
            report.check()


def test_a_leaf_outside_the_signed_tree_is_never_decoded(signed: Signed, monkeypatch: pytest.MonkeyPatch) -> None:
    """Undecodable leaf bytes with a proof that does not verify: the answer is the proof's failure,
    and neither the leaf's framing nor its state is read."""
    read: list[bytes] = []
    monkeypatch.setattr(bundle_module, "parse_leaf", read.append)
    bundle = {**signed.bundle, "leaf": _b64(b"\xff" * 40)}
    del bundle["tlog_proof"]  # optional: it would disagree too
    report = verify_proof(canonical.dumps(bundle), [signed.verifier])
    assert report.problems == [
        "the inclusion proof does not place this leaf at index 1 in the signed tree of 3 records"
    ]
    assert read == [] and report.decision_id is None and report.position is None


# --- the command, in process and as a real process -----------------------------------------------


@SETTINGS
@given(edits=EDITS)
def test_the_command_answers_every_mutation_with_a_documented_exit_code(
    signed: Signed, edits: list[tuple[str, int, int]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("cmd") / "p.json"
    path.write_bytes(_edit(signed.text.encode("utf-8"), edits))
    result = _run("verify-proof", str(path), "--key", str(signed.verifier_file))
    assert result.exit_code in (0, 9, 10, 11), result.stderr
    if result.exit_code == 0:
        assert result.stdout.startswith("OK: decision PEN-1 is at position 2 (leaf 1) of the log ")
    else:
        assert result.stderr.startswith("Error: ") and result.stdout == ""


def _exit_cases(signed: Signed, tmp: Path) -> dict[str, tuple[Path, int, str]]:
    def write(name: str, text: str | bytes) -> Path:
        path = tmp / name
        path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
        return path

    opening = signed.text.index('"decision":{') + len('"decision":{')
    other = {**signed.bundle, "position": 1}
    forged = {**signed.bundle, "checkpoint": signed.bundle["checkpoint"].replace("\n— ", "\n— x", 1)}
    return {
        "ok": (write("ok.json", signed.text), 0, "OK: decision PEN-1"),
        "missing": (tmp / "missing.json", 5, "cannot read"),
        "differs": (write("differs.json", canonical.dumps(other)), 9, "not 1"),
        "signature": (write("sig.json", canonical.dumps(forged)), 10, "checkpoint does not verify"),
        "duplicate": (write("dup.json", signed.text[:opening] + '"note":"x",' + signed.text[opening:]), 11, "twice"),
        "deep": (write("deep.json", "[" * 100_000 + "]" * 100_000), 11, "levels deep"),
        "not utf-8": (write("latin.json", b"\xff" + signed.text.encode()), 11, "not UTF-8"),
    }


def test_each_failure_has_its_exit_code(signed: Signed, tmp_path: Path) -> None:
    for name, (path, code, says) in _exit_cases(signed, tmp_path).items():
        result = _run("verify-proof", str(path), "--key", str(signed.verifier_file))
        assert result.exit_code == code, (name, result.stderr)
        assert says in (result.stdout if code == 0 else result.stderr), (name, result.stderr)


@pytest.mark.slow
def test_each_failure_has_its_exit_code_in_a_real_process(signed: Signed, tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("ledger")
    cases = _exit_cases(signed, tmp_path)
    for name in ("ok", "differs", "signature", "deep"):  # one of each exit code: a process costs a second
        path, code, says = cases[name]
        done = subprocess.run(
            [str(script), "verify-proof", str(path), "--key", str(signed.verifier_file)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == code, (name, done.stderr)
        assert "Traceback" not in done.stderr
        assert says in (done.stdout if code == 0 else done.stderr), (name, done.stderr)
