"""Offline proofs: a bundle anyone can check with the verifier key alone, no database.

``prove`` writes a JSON bundle with the decision, its leaf bytes, the inclusion proof and the
signed note, plus the same evidence as a C2SP ``tlog-proof`` text (the leaf bytes as its
``extra`` data); ``verify_proof`` checks one, each step only once the ones before held, and
decodes nothing the signature does not cover.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ledger import aggregates, canonical, merkle
from ledger.checkpoints import SignerKey, VerifierKey, b64encode, format_time, open_note
from ledger.decisions import MAX_DEPTH, record_from_state
from ledger.decisions import _decoder as json_decoder
from ledger.errors import DecisionError, IntegrityError, MalformedProof, NotFound, SignatureError, UnreadableRecord
from ledger.integrity.leaves import parse_leaf, row_leaf
from ledger.integrity.signing import checkpoint, read_checkpoints, unverified
from ledger.integrity.store import node_reader, sync
from ledger.integrity.tables import LEAVES, open_log
from ledger.integrity.tiles_out import cosigned_note
from ledger.topics import read_state
from ledger.transcoder import MsgpackTranscoder

if TYPE_CHECKING:
    from ledger.application import LedgerApplication

BUNDLE_FORMAT = "medtech-ledger/proof@v1"
TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"


def _unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError(f"{what} is not a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not valid base64") from None
    if b64encode(raw) != text:
        raise ValueError(f"{what} is not canonical base64")
    return raw


def tlog_proof_text(index: int, proof: Sequence[bytes], note: str, extra: bytes | None = None) -> str:
    """The C2SP ``tlog-proof@v1`` text: header, ``extra``, ``index``, hashes, blank, checkpoint."""
    lines = [TLOG_PROOF_HEADER]
    if extra is not None:
        lines.append(f"extra {b64encode(extra)}")
    lines.append(f"index {index}")
    lines.extend(b64encode(h) for h in proof)
    return "\n".join(lines) + "\n\n" + note


def _json_value(value: Any) -> Any:
    """A value as canonical JSON reads it back (dates as text, Decimals kept exact)."""
    return json.loads(canonical.dumps(value), parse_float=Decimal)


def prove(
    app: LedgerApplication,
    decision_id: str,
    signer_key: str | SignerKey | None = None,
    *,
    origin: str | None = None,
    sync_first: bool = True,
) -> dict[str, Any]:
    """A self-contained, offline-checkable proof that a decision is in the signed log.

    Proves against the latest stored checkpoint (the largest); when none covers the decision, signs
    a new one with ``signer_key`` or refuses. The bundle is checked (all but the signature) before
    it is returned, so the ledger never hands out a proof that does not verify.
    """
    recorded = app.decision(decision_id)
    if sync_first:  # a read-only server proves against what the writer synced and signed
        sync(app)
    log = open_log(app)
    with log.db.transaction(write=False) as c:
        stored = read_checkpoints(c, log)
        found = c.execute(f"SELECT leaf_index FROM {log.t(LEAVES)} WHERE position = ?", (recorded.position,)).fetchone()
    if found is None:
        raise IntegrityError(f"position {recorded.position} is not in the Merkle tree: run `ledger verify`")
    leaf_index = int(found[0])
    latest = max(stored, key=lambda cp: (cp.size, cp.seq), default=None)
    if latest is None or latest.size <= leaf_index:
        if signer_key is None:
            raise NotFound(
                f"no signed checkpoint covers position {recorded.position} yet: run `ledger checkpoint` "
                "or pass a signer key to sign one"
            )
        checkpoint(app, signer_key, origin)
        with log.db.transaction(write=False) as c:
            latest = max(read_checkpoints(c, log), key=lambda cp: (cp.size, cp.seq))
    with log.db.transaction(write=False) as c:
        row = c.execute(log.select_event_at, (recorded.position,)).fetchone()
        if row is None:
            raise IntegrityError(f"the record at position {recorded.position} is gone: run `ledger verify`")
        data = row_leaf(row)
        proof = merkle.inclusion_proof_from(node_reader(c, log), leaf_index, latest.size)
        note = cosigned_note(c, log, latest.seq) or latest.note  # with the witnesses' cosignatures
    bundle: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "decision": _json_value(recorded.record.to_json_dict()),
        "position": recorded.position,
        "recorded_at": recorded.recorded_at.isoformat(),
        "subject": recorded.subject,
        "leaf_index": leaf_index,
        "leaf": b64encode(data),
        "tree_size": latest.size,
        "inclusion_proof": [b64encode(h) for h in proof],
        "checkpoint": note,
        "tlog_proof": tlog_proof_text(leaf_index, proof, note, data),
    }
    report = verify_proof(bundle, (), check_signature=False)
    if not report.ok:
        raise IntegrityError(
            f"the proof of {decision_id} does not verify against checkpoint #{latest.seq}: "
            f"{'; '.join(report.problems)}; run `ledger verify`"
        )
    return bundle


def dump_bundle(bundle: Mapping[str, Any]) -> str:
    """The bundle as JSON text (canonical: Decimals exact, dates as ``YYYY-MM-DD``)."""
    return canonical.dumps(bundle) + "\n"


MAX_BUNDLE_BYTES = 8 << 20
"""A bundle holds one decision (a line of at most 1 MiB), its leaf twice in base64 and at most 64
hashes: a file larger than this is not one, and is refused before it is parsed."""
MAX_BUNDLE_DEPTH = MAX_DEPTH + 4
"""The deepest nesting of lists and objects a bundle can hold: a decision's values nest at most
``MAX_DEPTH`` deep, inside the decision, its ``fields`` and the bundle. Deeper is refused before
the JSON is parsed, so no bundle can exhaust the parser's stack."""
MAX_PROOF_HASHES = 64
"""An inclusion proof in a tree of fewer than 2**64 leaves has at most 64 hashes."""

_BUNDLE_FIELDS = frozenset(
    {
        "format",
        "decision",
        "position",
        "recorded_at",
        "subject",
        "leaf_index",
        "leaf",
        "tree_size",
        "inclusion_proof",
        "checkpoint",
        "tlog_proof",
    }
)
_OPTIONAL_FIELDS = frozenset({"tlog_proof"})
REQUIRED_FIELDS = _BUNDLE_FIELDS - _OPTIONAL_FIELDS
"""What every proof bundle carries (the API's schema of a bundle is derived from it)."""
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def _nesting_exceeds(text: str, limit: int) -> bool:
    """Whether JSON ``text`` opens more than ``limit`` lists and objects inside one another: its
    strings taken out first (a bracket in a string is text), then its brackets counted."""
    depth = 0
    for bracket in _BRACKET.finditer(_JSON_STRING.sub("", text)):
        if bracket.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def load_bundle(text: str | bytes) -> dict[str, Any]:
    """Parse a bundle file, or refuse it with ``MalformedProof``: larger than ``MAX_BUNDLE_BYTES``,
    not UTF-8, nested deeper than ``MAX_BUNDLE_DEPTH``, not JSON, a key twice in one object (JSON
    readers differ on which of two values they show: a bundle means one thing or nothing), or not
    an object. Numbers with a fraction stay ``Decimal`` so they compare exactly."""
    if len(text) > MAX_BUNDLE_BYTES:
        raise MalformedProof(f"the proof file is larger than {MAX_BUNDLE_BYTES} bytes: not a proof bundle")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedProof(f"the proof file is not UTF-8 text (byte {e.start}: {e.reason})") from None
    if _nesting_exceeds(text, MAX_BUNDLE_DEPTH):
        raise MalformedProof(f"the proof file nests lists and objects more than {MAX_BUNDLE_DEPTH} levels deep")
    try:
        obj = json_decoder().decode(text)
    except DecisionError as e:  # a key twice, NaN or Infinity (the decision parser's own refusals)
        raise MalformedProof(f"the proof file is not a bundle: {e}") from None
    except RecursionError:  # pragma: no cover - _nesting_exceeds refuses what could get here
        raise MalformedProof("the proof file nests lists and objects too deeply") from None
    except ValueError as e:
        raise MalformedProof(f"the proof file is not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise MalformedProof("the proof file is not a JSON object")
    return obj


@dataclass(frozen=True)
class _Bundle:
    """A bundle's fields, each of its type; nothing in them decoded beyond base64 yet."""

    decision: dict[str, Any]
    position: int
    recorded_at: str
    subject: str
    leaf_index: int
    leaf: bytes
    tree_size: int
    proof: list[bytes]
    note: str
    tlog_proof: str | None


def _bundle_fields(bundle: Mapping[str, Any]) -> _Bundle:
    """The bundle's fields, or ``MalformedProof`` naming the first that is missing, unknown, of
    the wrong type or not canonical base64."""
    missing = sorted(_BUNDLE_FIELDS - _OPTIONAL_FIELDS - bundle.keys())
    unknown = sorted(map(repr, bundle.keys() - _BUNDLE_FIELDS))
    if bundle.get("format") != BUNDLE_FORMAT:
        raise MalformedProof(f"not a {BUNDLE_FORMAT} bundle (field 'format')")
    if missing:
        raise MalformedProof(f"the bundle has no field {', '.join(map(repr, missing))}")
    if unknown:
        raise MalformedProof(f"the bundle has unknown fields {', '.join(unknown[:5])}")
    for name in ("position", "leaf_index", "tree_size"):
        value = bundle[name]
        if type(value) is not int or not 0 <= value < 2**64:
            raise MalformedProof(f"field {name!r} is not an integer from 0 to 2**64 - 1")
    for name in ("recorded_at", "subject", "checkpoint"):
        if type(bundle[name]) is not str:
            raise MalformedProof(f"field {name!r} is not a string")
    tlog = bundle.get("tlog_proof")
    if tlog is not None and type(tlog) is not str:
        raise MalformedProof("field 'tlog_proof' is not a string")
    if type(bundle["decision"]) is not dict:
        raise MalformedProof("field 'decision' is not an object")
    hashes = bundle["inclusion_proof"]
    if type(hashes) is not list or len(hashes) > MAX_PROOF_HASHES:
        raise MalformedProof(f"field 'inclusion_proof' is not a list of at most {MAX_PROOF_HASHES} hashes")
    try:
        leaf = _unb64(bundle["leaf"], "field 'leaf'")
        proof = [_unb64(h, f"field 'inclusion_proof' [{i}]") for i, h in enumerate(hashes)]
    except ValueError as e:
        raise MalformedProof(str(e)) from None
    if any(len(h) != merkle.HASH_SIZE for h in proof):
        raise MalformedProof(f"field 'inclusion_proof' holds a hash that is not {merkle.HASH_SIZE} bytes")
    return _Bundle(
        decision=bundle["decision"],
        position=bundle["position"],
        recorded_at=bundle["recorded_at"],
        subject=bundle["subject"],
        leaf_index=bundle["leaf_index"],
        leaf=leaf,
        tree_size=bundle["tree_size"],
        proof=proof,
        note=bundle["checkpoint"],
        tlog_proof=tlog,
    )


@dataclass
class ProofReport:
    """What ``verify_proof`` found about one bundle. Every value shown (decision, position, leaf,
    size, origin, time) is set only once the part of the bundle it comes from has verified."""

    decision_id: str | None = None
    position: int | None = None
    leaf_index: int | None = None
    tree_size: int | None = None
    origin: str | None = None
    checkpoint_time: str | None = None
    signers: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    signature_problem: str | None = None
    malformed: str | None = None
    """Why the input is no bundle at all (``MalformedProof``; also the one problem): then nothing
    else was looked at."""

    @property
    def ok(self) -> bool:
        return not self.problems and self.signature_problem is None

    def summary(self) -> str:
        return (
            f"decision {self.decision_id} is at position {self.position} (leaf {self.leaf_index}) of the log "
            f"{self.origin} of {self.tree_size} records, signed by {', '.join(self.signers) or '(not checked)'}"
            + (f" at {self.checkpoint_time}" if self.checkpoint_time else "")
        )

    def check(self) -> None:
        """Raise ``MalformedProof`` (exit 11) for what is no bundle, ``SignatureError`` (10) for a
        checkpoint whose signature does not verify, ``IntegrityError`` (9) for anything else."""
        if self.malformed is not None:
            raise MalformedProof(self.malformed)
        if self.signature_problem is not None:
            raise SignatureError(f"the proof's checkpoint does not verify: {self.signature_problem}")
        if self.problems:
            raise IntegrityError("the proof does not verify: " + "; ".join(self.problems))


def verify_proof(
    bundle: Mapping[str, Any] | str | bytes,
    verifier_keys: Sequence[str | VerifierKey],
    *,
    check_signature: bool = True,
) -> ProofReport:
    """Check a bundle from ``prove`` with no database, each step only once the ones before held:

    1. it is a bundle (``load_bundle``, then every field of its type: ``_bundle_fields``);
    2. the checkpoint note carries a valid signature by one of ``verifier_keys`` (C2SP signed-note);
    3. the leaf bytes hash (RFC 9162 §2.1.1) to a leaf the inclusion proof (§2.1.3.2) places at
       ``leaf_index`` in the tree of the checkpoint's size and root, and the C2SP tlog-proof text,
       if present, says the same;
    4. only then is the leaf decoded (its topic looked up, never imported, its state checked:
       ``ledger.topics``), and the decision, position, subject and record time shown must be
       exactly what it holds.
    Never raises for a bad bundle: every failure is in the report (``report.check()``).
    """
    report = ProofReport()
    try:
        if not isinstance(bundle, (str, bytes)):  # a bundle in memory is read as its file would be
            try:
                bundle = canonical.dumps(bundle)
            except (TypeError, ValueError, RecursionError) as e:
                raise MalformedProof(f"the bundle is not JSON data: {e}") from None
        fields = _bundle_fields(load_bundle(bundle))
    except MalformedProof as e:
        report.malformed = str(e)
        report.problems.append(report.malformed)
        return report
    try:
        if check_signature:
            cp, report.signers = open_note(fields.note, verifier_keys)
        else:
            cp = unverified(fields.note)
    except SignatureError as e:
        report.signature_problem = str(e)
        return report
    if fields.tree_size != cp.size:
        report.problems.append(f"tree_size {fields.tree_size} is not the checkpoint's size {cp.size}")
    if not merkle.verify_inclusion(merkle.leaf_hash(fields.leaf), fields.leaf_index, cp.size, fields.proof, cp.root):
        report.problems.append(
            f"the inclusion proof does not place this leaf at index {fields.leaf_index} in the signed tree of "
            f"{cp.size} records"
        )
    tlog = tlog_proof_text(fields.leaf_index, fields.proof, fields.note, fields.leaf)
    if fields.tlog_proof is not None and fields.tlog_proof != tlog:
        report.problems.append("the C2SP tlog-proof text disagrees with the bundle's fields")
    if report.problems:
        return report  # nothing the signature does not cover is decoded
    report.origin, report.tree_size, report.leaf_index = cp.origin, cp.size, fields.leaf_index
    try:
        report.checkpoint_time = format_time(cp.time) if cp.time else None
    except (SignatureError, ValueError):  # pragma: no cover - parse_checkpoint checked it
        report.checkpoint_time = None
    _check_leaf(fields, report)
    return report


def _check_leaf(fields: _Bundle, report: ProofReport) -> None:
    """Step 4 of ``verify_proof``: the leaf, now known to be in the signed tree, against what the
    bundle shows. A leaf the ledger could not have written is a problem, never a traceback."""
    try:
        leaf = parse_leaf(fields.leaf)
        cls, state = read_state(leaf.topic, leaf.state, MsgpackTranscoder().decode)
        recorded = record_from_state(cls.kind, state)
        recorded_json = recorded.to_json_dict()
        recorded_text = canonical.dumps(recorded_json, sort_keys=True)
    except UnreadableRecord as e:
        report.problems.append(f"the leaf {e}")
        return
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        report.problems.append(f"the leaf is not a record the ledger writes: {e}")
        return
    if leaf.position != fields.position:
        report.problems.append(f"the leaf is the record at position {leaf.position}, not {fields.position}")
    if recorded_text != canonical.dumps(fields.decision, sort_keys=True):
        shown = fields.decision
        differing = sorted(k for k in {*shown, *recorded_json} if _json_value(recorded_json.get(k)) != shown.get(k))
        report.problems.append(
            f"the decision shown differs from the recorded one in {', '.join(differing) or 'its form'}"
        )
    if aggregates.aggregate_id(state["subject"]) != leaf.originator_id:
        report.problems.append("the leaf's subject id does not belong to its subject")
    if fields.subject != state["subject"]:
        report.problems.append(f"subject {fields.subject!r} is not the recorded {state['subject']!r}")
    if fields.recorded_at != state["timestamp"].isoformat():
        report.problems.append("recorded_at is not the recorded time")
    if not report.problems:
        report.decision_id, report.position = recorded.id, leaf.position
