"""LedgerApplication on SQLite and PostgreSQL: import, refusals, corrections, reads, export.

Every test here runs against both databases (``ledger_url``/``app`` from conftest); PostgreSQL is
skipped with a reason when no server answers.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import (
    ALL_KINDS,
    CLINIC,
    EXAMPLE_FILE,
    HOSPITAL,
    RESIDENT,
    SURGEON,
    decision_files,
    normalise,
    parse_jsonl,
    to_jsonl,
)

from ledger import aggregates, canonical
from ledger import application as application_module
from ledger import importer as importer_module
from ledger.application import LedgerApplication
from ledger.decisions import parse_line
from ledger.errors import (
    ConflictingDecision,
    DecisionError,
    InvalidPanel,
    MalformedDecision,
    NotFound,
    UnknownDecision,
    UnknownReference,
)

SOURCE = "decisions.jsonl"
IDS = [d["id"] for d in EXAMPLE_FILE]


def lines_of(decisions: list[dict[str, Any]]) -> list[bytes]:
    """A decision file as the CLI hands it over: an iterable of byte lines."""
    return to_jsonl(decisions).splitlines(keepends=True)


def load(app: LedgerApplication, decisions: list[dict[str, Any]], source: str = SOURCE) -> Any:
    return app.import_lines(lines_of(decisions), source=source)


def exported(app: LedgerApplication) -> list[dict[str, Any]]:
    return parse_jsonl("".join(r.to_json() + "\n" for r in app.export()))


def refused_import(
    app: LedgerApplication, decisions: list[dict[str, Any]], error: type[DecisionError], *, line: int, field: str | None
) -> DecisionError:
    """Import ``decisions``; assert the file is refused as a whole at ``line``/``field``."""
    before = app.position()
    before_ids = {r.record.id for r in app.records()}
    with pytest.raises(DecisionError) as info:
        load(app, decisions)
    e = info.value
    assert type(e) is error, f"{type(e).__name__}: {e}"
    assert (e.file, e.line, e.field) == (SOURCE, line, field), str(e)
    assert str(e).startswith(f"{SOURCE}, line {line}" + (f", field '{field}': " if field else ": "))
    # Nothing from the file is written: not the lines before the bad one, not the ones after.
    assert app.position() == before
    assert {r.record.id for r in app.records()} == before_ids
    for d in decisions:
        if d["id"] not in before_ids:
            with pytest.raises(NotFound):
                app.decision(d["id"])
    return e


@pytest.fixture
def loaded(app: LedgerApplication) -> LedgerApplication:
    """A ledger holding EXAMPLE_FILE (one decision of every kind)."""
    load(app, EXAMPLE_FILE)
    return app


def new_institution(id_: str, licence: str, effective: str = "2019-01-01", province: str = "湖南省") -> dict[str, Any]:
    return {
        "id": id_,
        "kind": "institution.registered",
        "effective": effective,
        "by": "长沙市卫生健康委员会",
        "institution": licence,
        "name": "新开示范医院",
        "province": province,
        "city": "长沙市",
        "category": "医院",
        "level": "二级",
        "licensing_authority": "长沙市卫生健康委员会",
    }


def case(id_: str, effective: str = "2019-06-01", **changes: Any) -> dict[str, Any]:
    d = {
        "id": id_,
        "kind": "case.performed",
        "effective": effective,
        "by": HOSPITAL,
        "institution": HOSPITAL,
        "technology": "hunan:S14",
        "physician": SURGEON,
        "case": f"ZY{id_}",
    }
    return d | changes


# --- import ---------------------------------------------------------------------------------


def test_import_every_kind(app: LedgerApplication) -> None:
    assert app.position() == 0
    result = load(app, EXAMPLE_FILE)
    assert {d["kind"] for d in EXAMPLE_FILE} == set(ALL_KINDS)
    assert (result.source, result.recorded, result.unchanged) == (SOURCE, len(EXAMPLE_FILE), 0)
    assert (result.first_position, result.last_position) == (1, len(EXAMPLE_FILE))
    assert app.position() == len(EXAMPLE_FILE)
    assert [r.record.id for r in app.records()] == IDS
    assert [r.position for r in app.records()] == list(range(1, len(EXAMPLE_FILE) + 1))
    assert [normalise(d) for d in exported(app)] == [normalise(d) for d in EXAMPLE_FILE]
    assert exported(app)[11]["guangdong.批次"] is None  # a plugin field is kept as it was, null included


def test_recorded_decisions_carry_ledger_data(loaded: LedgerApplication) -> None:
    d = loaded.decision("EX-09")
    assert d.position == 9
    assert d.subject == aggregates.use_subject(HOSPITAL, "hunan:S14")
    assert isinstance(d.recorded_at, datetime)
    assert d.recorded_at.utcoffset() is not None
    assert d.record == parse_line(canonical.dumps(EXAMPLE_FILE[8]))
    assert d.record.fields["level"] == 4
    penalty = loaded.decision("EX-27").record
    assert penalty.fields["amount_yuan"] == Decimal("1500.50")
    assert str(penalty.fields["amount_yuan"]) == "1500.50"
    assert loaded.decision("EX-18").record.fields["enrolment_notice"] == date(2020, 8, 28)
    as_json = d.to_json_dict()
    assert (as_json["_position"], as_json["_subject"]) == (9, d.subject)


def test_reimport_is_idempotent(loaded: LedgerApplication) -> None:
    before = exported(loaded)
    result = load(loaded, EXAMPLE_FILE)
    assert (result.recorded, result.unchanged) == (0, len(EXAMPLE_FILE))
    assert (result.first_position, result.last_position) == (None, None)
    assert loaded.position() == len(EXAMPLE_FILE)
    assert exported(loaded) == before


def test_reimport_with_other_key_order_and_spacing_is_idempotent(loaded: LedgerApplication) -> None:
    text = ["  " + canonical.dumps(dict(reversed(list(d.items())))) + " \r\n" for d in EXAMPLE_FILE]
    result = loaded.import_lines(text, source=SOURCE)
    assert (result.recorded, result.unchanged) == (0, len(EXAMPLE_FILE))


def test_reimport_of_export_into_the_same_ledger_adds_nothing(loaded: LedgerApplication) -> None:
    result = loaded.import_lines([r.to_json() for r in loaded.export()], source="export.jsonl")
    assert (result.recorded, result.unchanged) == (0, len(EXAMPLE_FILE))


def test_import_in_parts_then_whole(app: LedgerApplication) -> None:
    first = load(app, EXAMPLE_FILE[:10])
    assert (first.recorded, first.first_position, first.last_position) == (10, 1, 10)
    rest = load(app, EXAMPLE_FILE)
    assert (rest.recorded, rest.unchanged, rest.first_position) == (len(EXAMPLE_FILE) - 10, 10, 11)


def test_blank_lines_are_skipped(app: LedgerApplication) -> None:
    raw = [b"\n", *lines_of(EXAMPLE_FILE[:3]), b"   \n", b""]
    assert app.import_lines(raw, source=SOURCE).recorded == 3


def test_same_decision_twice_in_one_file(app: LedgerApplication) -> None:
    result = load(app, [*EXAMPLE_FILE[:3], EXAMPLE_FILE[2]])
    assert (result.recorded, result.unchanged) == (3, 1)


# --- conflicts ------------------------------------------------------------------------------


def test_same_id_different_content_refuses_the_file(loaded: LedgerApplication) -> None:
    changed = copy.deepcopy(EXAMPLE_FILE[25])  # EX-26, a penalty
    changed["amount_yuan"] = 30001
    file = [new_institution("NEW-1", "NEWLICENCE1"), case("NEW-2", institution=HOSPITAL), changed, case("NEW-3")]
    e = refused_import(loaded, file, ConflictingDecision, line=3, field="id")
    assert "'EX-26' is already recorded (position 26) with different content" in e.message
    assert "decision.corrected" in e.message


def test_same_id_different_content_within_one_file(app: LedgerApplication) -> None:
    other = copy.deepcopy(EXAMPLE_FILE[0]) | {"name": "另一个名字"}
    refused_import(app, [*EXAMPLE_FILE[:4], other], ConflictingDecision, line=5, field="id")


def test_nothing_written_even_after_batches_were_flushed(
    app: LedgerApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches, so that earlier lines are already INSERTed when the bad line comes.
    monkeypatch.setattr(importer_module, "BATCH", 2)
    bad = case("BAD-1", physician="NOBODY")
    e = refused_import(app, [*EXAMPLE_FILE, bad], UnknownReference, line=len(EXAMPLE_FILE) + 1, field="physician")
    assert "unknown physician 'NOBODY'" in e.message
    assert app.position() == 0
    assert list(app.export()) == []
    # And the ledger is still usable afterwards.
    assert load(app, EXAMPLE_FILE).recorded == len(EXAMPLE_FILE)


def test_nothing_written_after_a_correction_flushed_mid_file(app: LedgerApplication) -> None:
    # A correction flushes what precedes it so that its target is readable; a later error must
    # still undo it all.
    file = [*EXAMPLE_FILE, case("LATE", effective="1999-01-01")]
    refused_import(app, file, UnknownReference, line=len(file), field="institution")


def test_malformed_line_refuses_the_file(loaded: LedgerApplication) -> None:
    raw = [*lines_of([new_institution("NEW-1", "NEWLICENCE1")]), b'{"id": "NEW-2", "kind": \n']
    before = loaded.position()
    with pytest.raises(MalformedDecision) as info:
        loaded.import_lines(raw, source=SOURCE)
    assert (info.value.file, info.value.line, info.value.field) == (SOURCE, 2, None)
    assert loaded.position() == before
    with pytest.raises(NotFound):
        loaded.decision("NEW-1")


def test_too_long_line_refused(app: LedgerApplication) -> None:
    huge = case("HUGE") | {"note": "长" * (application_module.MAX_LINE_BYTES // 3 + 10)}
    e = refused_import(app, [*EXAMPLE_FILE[:6], huge], MalformedDecision, line=7, field=None)
    assert e.message == f"line is longer than {application_module.MAX_LINE_BYTES} bytes"


# --- references -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decision", "field", "shown"),
    [
        (case("X", institution="UNKNOWN"), "institution", "institution 'UNKNOWN'"),
        (case("X", physician="UNKNOWN"), "physician", "physician 'UNKNOWN'"),
        (case("X", technology="hunan:S99"), "technology", "technology 'hunan:S99'"),
        (case("X", technology="national:S14"), "technology", "technology 'national:S14'"),
        (
            {"id": "X", "kind": "filing.submitted", "effective": "2019-06-01", "by": HOSPITAL,
             "institution": HOSPITAL, "technology": "hunan:S14", "technical_lead": "UNKNOWN", "materials": []},
            "technical_lead",
            "physician 'UNKNOWN'",
        ),
        (
            {"id": "X", "kind": "technology.reclassified", "effective": "2019-06-01", "by": "国家卫生健康委",
             "catalog": "national", "code": "G99", "class": "prohibited"},
            "code",
            "technology 'national:G99'",
        ),
        (
            {"id": "X", "kind": "physician.registered", "effective": "2019-06-01", "by": "x",
             "physician": "NEWDOC", "name": "新医生", "institution": "UNKNOWN", "title": "住院医师"},
            "institution",
            "institution 'UNKNOWN'",
        ),
        (
            {"id": "X", "kind": "correction.ordered", "effective": "2022-05-11", "by": "x",
             "institution": HOSPITAL, "technology": "chongqing:S14", "deadline": "2022-06-30"},
            "technology",
            "technology 'chongqing:S14'",
        ),
    ],
    ids=["institution", "physician", "technology", "catalog", "technical_lead", "code", "registering", "optional"],
)  # fmt: skip
def test_unknown_reference(loaded: LedgerApplication, decision: dict[str, Any], field: str, shown: str) -> None:
    file = [new_institution("NEW-1", "NEWLICENCE1"), decision]
    e = refused_import(loaded, file, UnknownReference, line=2, field=field)
    assert e.message.startswith(f"unknown {shown}: no ")


@pytest.mark.parametrize(
    ("changes", "field", "ref", "since"),
    [
        ({"effective": "2003-09-17", "physician": None}, "institution", f"institution '{HOSPITAL}'", "2003-09-18"),
        ({"effective": "2010-02-28"}, "physician", f"physician '{SURGEON}'", "2010-03-01"),
    ],
    ids=["institution", "physician"],
)  # A technology may be used before a catalogue lists it: tests/plugins/test_catalogue_history.py
def test_reference_known_only_after_effective(
    loaded: LedgerApplication, changes: dict[str, Any], field: str, ref: str, since: str
) -> None:
    decision = case("EARLY", effective=changes["effective"])
    if changes.get("physician", "keep") is None:
        decision = {k: v for k, v in decision.items() if k not in ("physician", "case")} | {
            "kind": "review.concluded",
            "committee": "ethics",
            "outcome": "approved",
        }
    e = refused_import(loaded, [case("OK-1"), decision], UnknownReference, line=2, field=field)
    assert e.message == (
        f"{ref} is known only from {since}, after this decision's effective date {changes['effective']}"
    )


def test_reference_known_on_the_effective_day_is_accepted(loaded: LedgerApplication) -> None:
    assert load(loaded, [case("SAME-DAY", effective="2018-11-19", physician=SURGEON)]).recorded == 1


def test_reference_registered_earlier_in_the_same_file(app: LedgerApplication) -> None:
    file = [
        *EXAMPLE_FILE[:2],
        new_institution("NEW-1", "NEWLICENCE1", effective="2019-01-01"),
        case("NEW-2", effective="2019-01-01", institution="NEWLICENCE1", physician=SURGEON),
    ]
    # SURGEON is not registered yet in this file: refused at line 4 …
    e = refused_import(app, file, UnknownReference, line=4, field="physician")
    assert e.message.startswith(f"unknown physician '{SURGEON}'")
    # … and with him registered first, the same lines go in.
    doctor = copy.deepcopy(EXAMPLE_FILE[4]) | {"institution": "NEWLICENCE1", "effective": "2019-01-01"}
    assert load(app, [*file[:3], doctor, file[3]]).recorded == 5


def test_reference_registered_later_in_the_same_file_is_unknown(app: LedgerApplication) -> None:
    # Each line is checked against the ledger and the lines before it: order in the file matters.
    file = [EXAMPLE_FILE[0], case("NEW-2", institution=HOSPITAL), EXAMPLE_FILE[2], EXAMPLE_FILE[4]]
    refused_import(app, file, UnknownReference, line=2, field="institution")


def test_reference_known_only_after_effective_within_one_file(app: LedgerApplication) -> None:
    file = [EXAMPLE_FILE[0], new_institution("NEW-1", "NEWLICENCE1", effective="2019-01-01")]
    file.append({**EXAMPLE_FILE[22], "id": "INSP", "institution": "NEWLICENCE1", "effective": "2018-12-31"})
    e = refused_import(app, file, UnknownReference, line=3, field="institution")
    assert "known only from 2019-01-01" in e.message


def test_record_one_decision(loaded: LedgerApplication) -> None:
    result = loaded.record(parse_line(canonical.dumps(case("ONE"))))
    assert (result.recorded, result.last_position) == (1, len(EXAMPLE_FILE) + 1)
    again = loaded.record(parse_line(canonical.dumps(case("ONE"))))
    assert (again.recorded, again.unchanged) == (0, 1)
    with pytest.raises(UnknownReference) as info:
        loaded.record(parse_line(canonical.dumps(case("TWO", physician="NOBODY"))))
    assert (info.value.file, info.value.line, info.value.field) == ("<record>", None, "physician")
    assert str(info.value).startswith("<record>, field 'physician': unknown physician 'NOBODY'")


# --- corrections and retractions ------------------------------------------------------------


def correction(id_: str, corrects: str, fields: dict[str, Any], effective: str = "2024-05-01") -> dict[str, Any]:
    return {"id": id_, "kind": "decision.corrected", "effective": effective, "by": "x", "corrects": corrects,
            "fields": fields}  # fmt: skip


def retraction(id_: str, retracts: str) -> dict[str, Any]:
    return {"id": id_, "kind": "decision.retracted", "effective": "2024-05-01", "by": "x", "retracts": retracts,
            "reason": "录入错误"}  # fmt: skip


def test_correction_of_an_unknown_decision(loaded: LedgerApplication) -> None:
    e = refused_import(
        loaded, [case("OK"), correction("C", "NO-SUCH", {"note": "x"})], UnknownDecision, line=2, field="corrects"
    )
    assert e.message == "no decision with id 'NO-SUCH' to correct"


def test_retraction_of_an_unknown_decision(loaded: LedgerApplication) -> None:
    e = refused_import(loaded, [case("OK"), retraction("R", "NO-SUCH")], UnknownDecision, line=2, field="retracts")
    assert e.message == "no decision with id 'NO-SUCH' to retract"


def test_correction_of_a_decision_later_in_the_same_file(app: LedgerApplication) -> None:
    file = [*EXAMPLE_FILE[:4], correction("C", "EX-06", {"title": "主治医师"}), *EXAMPLE_FILE[4:6]]
    refused_import(app, file, UnknownDecision, line=5, field="corrects")


@pytest.mark.parametrize("name", ["institution", "technology", "physician"])
def test_correction_changing_a_subject_field_refused(loaded: LedgerApplication, name: str) -> None:
    e = refused_import(
        loaded,
        [case("OK"), correction("C", "EX-09", {name: "OTHER"})],
        MalformedDecision,
        line=2,
        field=f"fields.{name}",
    )
    assert e.message.startswith(f"'{name}' says what the decision is about")


def test_correction_with_an_invalid_value_refused(loaded: LedgerApplication) -> None:
    refused_import(
        loaded, [correction("C", "EX-26", {"amount_yuan": -1})], MalformedDecision, line=1, field="fields.amount_yuan"
    )
    refused_import(loaded, [correction("C", "EX-09", {"level": 7})], MalformedDecision, line=1, field="fields.level")


def test_correction_of_a_panel_keeps_it_valid(loaded: LedgerApplication) -> None:
    e = refused_import(
        loaded, [correction("C", "EX-21", {"votes": {"王五": "for"}})], InvalidPanel, line=1, field="votes"
    )
    assert e.message == "'王五' voted but is not a member"
    assert load(loaded, [correction("C", "EX-21", {"outcome": "fail"})]).recorded == 1


def test_correction_of_a_correction_and_retraction_of_a_retraction_refused(loaded: LedgerApplication) -> None:
    e = refused_import(loaded, [correction("C", "EX-32", {"note": "x"})], MalformedDecision, line=1, field="corrects")
    assert e.message == "'EX-32' is itself a decision.corrected; point at the original decision instead"
    refused_import(loaded, [retraction("R", "EX-33")], MalformedDecision, line=1, field="retracts")
    # Retracting a correction is how a wrong correction is undone.
    assert load(loaded, [retraction("R", "EX-32")]).recorded == 1


def test_correction_lands_on_the_subject_of_its_target(loaded: LedgerApplication) -> None:
    institution = f"institution:{HOSPITAL}"
    history = loaded.history(institution)
    assert [e.decision_id for e in history] == ["EX-03", "EX-23", "EX-25", "EX-26", "EX-32"]
    assert [e.originator_version for e in history] == [1, 2, 3, 4, 5]
    assert {e.originator_id for e in history} == {aggregates.aggregate_id(institution)}
    assert history[-1].kind == "decision.corrected"
    assert history[-1].subject == institution
    use = aggregates.use_subject(HOSPITAL, "hunan:S14")
    assert loaded.history(use)[-1].decision_id == "EX-33"
    assert loaded.decision("EX-33").subject == use
    assert loaded.decision("EX-32").subject == institution
    assert loaded.history("institution:NO-SUCH") == []


def test_correction_made_in_the_same_file_as_its_target(app: LedgerApplication) -> None:
    load(app, EXAMPLE_FILE)
    assert app.decision("EX-26").corrections[0].record.id == "EX-32"


def test_decision_returns_corrections_and_retractions(loaded: LedgerApplication) -> None:
    load(
        loaded,
        [correction("EX-34", "EX-26", {"note": "再次复核"}, effective="2024-06-01"), retraction("EX-35", "EX-26")],
    )
    d = loaded.decision("EX-26")
    assert d.record.id == "EX-26"
    assert d.record.fields["amount_yuan"] == 30000  # the original stays as it was
    assert [c.record.id for c in d.corrections] == ["EX-32", "EX-34", "EX-35"]
    first = d.corrections[0]
    assert first.record.fields["fields"] == {"amount_yuan": Decimal(20000), "reason": "MTM-2018#46（复核后）"}
    assert first.position == 32
    assert d.to_json_dict()["_corrections"] == ["EX-32", "EX-34", "EX-35"]
    assert loaded.decision("EX-10").corrections[0].record.kind == "decision.retracted"
    assert loaded.decision("EX-01").corrections == ()


def test_decision_unknown(loaded: LedgerApplication) -> None:
    with pytest.raises(NotFound) as info:
        loaded.decision("NO-SUCH")
    assert str(info.value) == "no decision with id 'NO-SUCH' in this ledger"


def test_corrected_dates_are_normalised(loaded: LedgerApplication) -> None:
    load(loaded, [correction("C", "EX-24", {"deadline": "2022-07-15", "effective": "2022-05-12"})])
    fields = loaded.decision("C").record.fields["fields"]
    assert fields == {"deadline": date(2022, 7, 15), "effective": date(2022, 5, 12)}


# --- reading: records() filters -------------------------------------------------------------


def ids(decisions: Iterator[Any]) -> list[str]:
    return [d.record.id for d in decisions]


def test_records_by_subject(loaded: LedgerApplication) -> None:
    assert ids(loaded.records(subject=f"physician:{RESIDENT}")) == ["EX-06", "EX-16", "EX-17", "EX-19", "EX-31"]
    assert ids(loaded.records(subject="technology:hunan:S14")) == ["EX-01", "EX-29"]
    assert ids(loaded.records(subject=f"institution:{CLINIC}")) == ["EX-04", "EX-27", "EX-GC"]
    assert ids(loaded.records(subject="panel:evaluation|national:G01|")) == ["EX-22"]
    assert ids(loaded.records(subject="nothing")) == []


def test_records_by_kind(loaded: LedgerApplication) -> None:
    assert ids(loaded.records(kinds=["penalty.imposed"])) == ["EX-26", "EX-27"]
    assert ids(loaded.records(kinds=["technology.listed", "technology.delisted"])) == ["EX-01", "EX-02", "EX-30"]
    assert ids(loaded.records(kinds=["no.such"])) == []


def test_records_by_jurisdiction(loaded: LedgerApplication) -> None:
    hunan_province = ids(loaded.records(jurisdictions=["湖南省"]))
    assert "EX-03" in hunan_province
    assert "EX-04" not in hunan_province
    assert "EX-01" not in hunan_province  # a catalogue entry belongs to its catalogue
    assert ids(loaded.records(jurisdictions=["重庆市"])) == ["EX-04", "EX-27", "EX-GC"]
    assert ids(loaded.records(jurisdictions=["hunan"])) == ["EX-01", "EX-29"]
    # The evaluation panel has no institution: it belongs to its technology's catalogue.
    assert ids(loaded.records(jurisdictions=["national"])) == ["EX-02", "EX-22", "EX-30"]
    both = ids(loaded.records(jurisdictions=["湖南省", "hunan"]))
    assert both == [i for i in IDS if i in set(hunan_province) | {"EX-01", "EX-29"}]
    # Corrections and retractions belong where their target does.
    assert {"EX-32", "EX-33"} <= set(hunan_province)
    # The key registration (EX-KEY) belongs to no jurisdiction: it is about an authority.
    assert len(hunan_province) + 2 + 3 + 3 + 1 == len(IDS)


def test_records_by_effective_range(loaded: LedgerApplication) -> None:
    got = list(loaded.records(effective_from=date(2020, 1, 1), effective_to=date(2020, 12, 31)))
    assert ids(iter(got)) == ["EX-14", "EX-15", "EX-16", "EX-17", "EX-18"]
    assert all(date(2020, 1, 1) <= d.record.effective <= date(2020, 12, 31) for d in got)
    assert ids(loaded.records(effective_from=date(2024, 4, 1))) == ["EX-32", "EX-33", "EX-KEY"]
    assert ids(loaded.records(effective_to=date(2005, 11, 21))) == ["EX-03", "EX-04"]


def test_records_limit_after_and_combined(loaded: LedgerApplication) -> None:
    assert ids(loaded.records(limit=3)) == IDS[:3]
    assert ids(loaded.records(after=30)) == IDS[30:]
    assert ids(loaded.records(after=5, limit=2)) == IDS[5:7]
    assert ids(loaded.records(limit=0)) == []
    assert ids(
        loaded.records(
            kinds=["case.performed", "use.suspended"], jurisdictions=["湖南省"], effective_from=date(2019, 4, 23)
        )
    ) == ["EX-10", "EX-14"]


def test_records_page_through_batches(app: LedgerApplication, monkeypatch: pytest.MonkeyPatch) -> None:
    load(app, EXAMPLE_FILE)
    monkeypatch.setattr(importer_module, "BATCH", 4)
    assert ids(app.records()) == IDS
    assert ids(app.records(limit=9)) == IDS[:9]
    assert [n.id for n, _ in app.notifications(batch=5)] == list(range(1, len(IDS) + 1))
    assert [r.id for r in app.export(after=30)] == IDS[30:]


# --- export and import: identity --------------------------------------------------------------


def test_export_of_an_empty_ledger(app: LedgerApplication) -> None:
    assert list(app.export()) == []
    assert app.position() == 0


def test_export_reimports_to_the_same_export(loaded: LedgerApplication, new_ledger_url: Callable[[], str]) -> None:
    first = [r.to_json() for r in loaded.export()]
    with open_ledger(new_ledger_url()) as other:
        other.import_lines(first, source="export.jsonl")
        assert [r.to_json() for r in other.export()] == first


@contextmanager
def open_ledger(url: str) -> Iterator[LedgerApplication]:
    ledger = LedgerApplication.open(url)
    try:
        yield ledger
    finally:
        ledger.close()


def test_export_import_identity(backend: str, new_ledger_url: Callable[[], str]) -> None:
    """Import a generated file into a fresh ledger, export it: the same decisions come back, in
    the same order; and the export imported into another fresh ledger exports identically."""
    files = st.one_of(decision_files(), decision_files(kinds=ALL_KINDS, max_extra=3))

    @settings(
        max_examples=40 if backend == "sqlite" else 10,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(files)
    def check(decisions: list[dict[str, Any]]) -> None:
        with open_ledger(new_ledger_url()) as first:
            result = first.import_lines(lines_of(decisions), source="generated.jsonl")
            assert result.recorded == len(decisions)
            out = [r.to_json() for r in first.export()]
            assert [normalise(d) for d in parse_jsonl("\n".join(out))] == [normalise(d) for d in decisions]
            again = first.import_lines(out, source="export.jsonl")
            assert (again.recorded, again.unchanged) == (0, len(decisions))
        with open_ledger(new_ledger_url()) as second:
            second.import_lines(out, source="export.jsonl")
            assert [r.to_json() for r in second.export()] == out

    check()
