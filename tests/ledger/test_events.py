"""The vocabulary's topics are pinned, and stored topics are looked up in it, never imported.

Events are facts, forever (ARCHITECTURE.md rule 1): every stored record carries its class's topic,
so a class renamed or moved without an alias would orphan every record of its kind. And stored data
never names code to run (rule 11): eventsourcing's ``resolve_topic`` imports the module a topic
names (``this:s`` runs Python's ``this``); ``ledger.topics`` only looks topics up.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic, register_topic
from hypothesis import given
from hypothesis import strategies as st

from ledger import events as ev
from ledger import topics
from ledger.errors import IntegrityError, UnreadableRecord
from ledger.topics import LedgerMapper, checked_state, event_class, read_state, register_alias
from ledger.transcoder import MsgpackTranscoder

PINNED = [
    "ledger.events:TechnologyListed",
    "ledger.events:TechnologyReclassified",
    "ledger.events:TechnologyDelisted",
    "ledger.events:InstitutionRegistered",
    "ledger.events:PhysicianRegistered",
    "ledger.events:PhysicianDeregistered",
    "ledger.events:ReviewConcluded",
    "ledger.events:CasePerformed",
    "ledger.events:FilingSubmitted",
    "ledger.events:FilingCompleted",
    "ledger.events:FilingRejected",
    "ledger.events:UseSuspended",
    "ledger.events:UseResumed",
    "ledger.events:UseStopped",
    "ledger.events:PrivilegeGranted",
    "ledger.events:PrivilegeSuspended",
    "ledger.events:PrivilegeRevoked",
    "ledger.events:TrainingBaseFiled",
    "ledger.events:TrainingBaseStopped",
    "ledger.events:TraineeCertified",
    "ledger.events:PanelConcluded",
    "ledger.events:InspectionRecorded",
    "ledger.events:CorrectionOrdered",
    "ledger.events:PenaltyImposed",
    "ledger.events:DecisionCorrected",
    "ledger.events:DecisionRetracted",
    "ledger.events:AuthorityKeyRegistered",
    "ledger.events:SelfAssessmentConcluded",
    "ledger.events:GradingCataloguePublished",
]
"""Every topic ever written to a ledger. Append to it; never edit or remove a line: a class that
moves keeps its old topic readable with ``ledger.topics.register_alias(old_topic, cls)``."""

PINNED_KINDS = {topic: kind for topic, kind in zip(PINNED, ev.EVENT_CLASSES, strict=True)}
"""The kind each pinned topic holds (the classes of ``EVENT_CLASSES`` are in this order)."""


def test_every_event_class_has_a_pinned_topic() -> None:
    assert [get_topic(cls) for cls in ev.EVENT_CLASSES.values()] == PINNED


@pytest.mark.parametrize("topic", PINNED)
def test_every_pinned_topic_reads_as_its_kind(topic: str) -> None:
    cls = event_class(topic)
    assert cls.kind == PINNED_KINDS[topic]
    assert ev.EVENT_CLASSES[cls.kind] is cls
    assert topics.kind_of(topic) == cls.kind


@pytest.mark.parametrize(
    "topic",
    [
        "this:s",
        "this",
        "os:system",
        "subprocess:Popen",
        "ledger.events:Decision",  # the base class is no kind
        "ledger.events:EVENT_CLASSES",
        "ledger.events:TechnologyListed.kind",
        "eventsourcing.domain:DomainEvent",
        "ledger.events:technologylisted",
        "ledger.events:TechnologyListed ",
        "",
        "\x00",
    ],
)
def test_a_topic_outside_the_vocabulary_is_refused_by_look_up(topic: str) -> None:
    with pytest.raises(UnreadableRecord, match="not a kind of decision in the ledger's vocabulary") as caught:
        event_class(topic)
    assert isinstance(caught.value, IntegrityError)


@pytest.mark.slow
def test_reading_a_stored_topic_never_imports_the_module_it_names() -> None:
    """In a fresh interpreter (``this`` prints the Zen of Python when imported): the mapper and the
    runner's reader refuse ``this:s`` and ``json.tool:main``, and neither module gets imported."""
    script = """
import sys
from uuid import uuid4
from eventsourcing.persistence import StoredEvent
from ledger.errors import UnreadableRecord
from ledger.topics import LedgerMapper, read_state
from ledger.transcoder import MsgpackTranscoder
mapper = LedgerMapper(MsgpackTranscoder())
for topic in ("this:s", "json.tool:main"):
    for read in (
        lambda: mapper.to_domain_event(StoredEvent(uuid4(), 1, topic, b"\\x80")),
        lambda: read_state(topic, b"\\x80", mapper.transcoder.decode),
    ):
        try:
            read()
        except UnreadableRecord:
            pass
        else:
            raise SystemExit("read " + topic)
print(sorted(m for m in ("this", "json.tool") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"


def test_an_alias_keeps_a_moved_class_readable_and_only_names_the_vocabulary() -> None:
    old = f"ledger.old_events_{uuid4().hex}:TechnologyListed"
    with pytest.raises(UnreadableRecord):
        event_class(old)
    register_alias(old, ev.TechnologyListed)
    assert event_class(old) is ev.TechnologyListed
    with pytest.raises(TypeError, match="not an event class"):
        register_alias(f"ledger.old_{uuid4().hex}:Decision", ev.Decision)


def test_eventsourcing_register_topic_is_honoured_for_vocabulary_classes_only() -> None:
    """Rule 1 says ``register_topic(old_topic, cls)`` when a class moves: that alias is read from
    eventsourcing's table; a topic registered there for anything else stays unreadable."""
    moved = f"ledger.moved_{uuid4().hex}:PenaltyImposed"
    register_topic(moved, ev.PenaltyImposed)
    assert event_class(moved) is ev.PenaltyImposed
    elsewhere = f"ledger.moved_{uuid4().hex}:Stranger"
    register_topic(elsewhere, StoredEvent)
    with pytest.raises(UnreadableRecord):
        event_class(elsewhere)


def _state() -> dict[str, Any]:
    """The stored state of a penalty (a Decimal, a date, a datetime, free-form extensions)."""
    return {
        "timestamp": datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
        "decision_id": "PEN-1",
        "effective": date(2022, 8, 2),
        "by": "湖南省卫生健康委员会",
        "basis": None,
        "note": "未按期整改",
        "subject": "institution:44860321X43010211A1001",
        "extensions": {"hunan.form": {"rows": [1, "二", Decimal("2.50"), None, True]}},
        "signature": None,
        "institution": "44860321X43010211A1001",
        "amount_yuan": Decimal("1500.50"),
        "reason": "未按期整改",
    }


def test_a_well_formed_state_reads_back_through_the_mapper() -> None:
    mapper = LedgerMapper(MsgpackTranscoder())
    oid = uuid4()
    state = _state()
    data = MsgpackTranscoder().encode(state)
    event = mapper.to_domain_event(StoredEvent(oid, 3, "ledger.events:PenaltyImposed", data))
    assert isinstance(event, ev.PenaltyImposed)
    assert event.originator_id == oid and event.originator_version == 3
    assert event.amount_yuan == Decimal("1500.50") and event.extensions == state["extensions"]
    assert mapper.to_stored_event(event).state == data  # writing is eventsourcing's, byte for byte


BAD_VALUES: list[tuple[str, Any]] = [
    ("decision_id", 7),
    ("decision_id", None),
    ("effective", "2022-08-02"),
    ("effective", datetime(2022, 8, 2, tzinfo=UTC)),  # a datetime is a date, but not a day
    ("timestamp", datetime(2024, 5, 6)),  # naive
    ("timestamp", date(2024, 5, 6)),
    ("by", b"bytes"),
    ("basis", 1),
    ("extensions", []),
    ("extensions", {1: "non-text key"}),
    ("extensions", {"x": {1, 2}}),
    ("extensions", {"x": Decimal("NaN")}),
    ("amount_yuan", Decimal("Infinity")),
    ("amount_yuan", 1500.5),
    ("amount_yuan", "1500.50"),
    ("reason", ["a"]),
    ("signature", True),
]


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_a_field_of_the_wrong_type_is_unreadable(name: str, value: Any) -> None:
    state = _state()
    state[name] = value
    with pytest.raises(UnreadableRecord, match=f"its field '{name}' is not of the type penalty.imposed declares"):
        checked_state(ev.PenaltyImposed, state)


def test_literals_lists_and_maps_are_checked_to_their_items() -> None:
    state = {
        **{k: v for k, v in _state().items() if k not in ("institution", "amount_yuan", "reason")},
        "panel": "technical-audit",
        "technology": "hunan:S14",
        "institution": None,
        "members": ["甲", "乙"],
        "recused": [],
        "votes": {"甲": "for", "乙": "against"},
        "outcome": "pass",
    }
    assert checked_state(ev.PanelConcluded, dict(state)) == state
    for name, value in [
        ("panel", "audit"),
        ("members", ["甲", 2]),
        ("votes", {"甲": "abstain"}),
        ("votes", {3: "for"}),
        ("outcome", True),
        ("institution", 5),
    ]:
        with pytest.raises(UnreadableRecord, match=f"'{name}'"):
            checked_state(ev.PanelConcluded, {**state, name: value})


def test_missing_or_extra_fields_are_unreadable() -> None:
    state = _state()
    del state["reason"]
    with pytest.raises(UnreadableRecord, match=r"missing reason"):
        checked_state(ev.PenaltyImposed, state)
    with pytest.raises(UnreadableRecord, match=r"unexpected 'class_version'"):
        checked_state(ev.PenaltyImposed, {**_state(), "class_version": 2})
    with pytest.raises(UnreadableRecord, match="not a map of fields"):
        checked_state(ev.PenaltyImposed, [1, 2])


def test_nesting_deeper_than_a_decision_may_have_is_unreadable_without_exhausting_the_stack() -> None:
    deep: Any = "leaf"
    for _ in range(100_000):
        deep = [deep]
    state = {**_state(), "extensions": {"x": deep}}
    with pytest.raises(UnreadableRecord, match="'extensions'"):
        checked_state(ev.PenaltyImposed, state)


@given(data=st.binary(max_size=200))
def test_any_bytes_read_as_a_state_or_as_unreadable_never_anything_else(data: bytes) -> None:
    decode = MsgpackTranscoder().decode
    try:
        cls, state = read_state("ledger.events:PenaltyImposed", data, decode)
    except UnreadableRecord as e:
        assert "cannot be read" in str(e)
    else:  # pragma: no cover - random bytes are almost never a penalty
        assert cls is ev.PenaltyImposed and set(state) >= {"decision_id", "amount_yuan"}


@given(cut=st.integers(min_value=0), flip=st.integers(min_value=0, max_value=255), at=st.integers(min_value=0))
def test_a_damaged_state_reads_back_whole_or_not_at_all(cut: int, flip: int, at: int) -> None:
    """A truncated or bit-flipped real state is either still a penalty of the right types or an
    ``UnreadableRecord`` naming the subject and version; never a traceback."""
    data = bytearray(MsgpackTranscoder().encode(_state()))
    data = data[: len(data) - cut % len(data)] if cut % 3 == 0 else data
    if data:
        data[at % len(data)] ^= flip
    mapper = LedgerMapper(MsgpackTranscoder())
    oid = uuid4()
    try:
        event = mapper.to_domain_event(StoredEvent(oid, 9, "ledger.events:PenaltyImposed", bytes(data)))
    except UnreadableRecord as e:
        assert f"the record of subject id {oid} version 9 cannot be read" in str(e)
    else:
        assert isinstance(event, ev.PenaltyImposed)
        assert type(event.amount_yuan) is Decimal and type(event.effective) is date
