"""Parsing decision files (DECISIONS.md): what is accepted, and every refusal with its field."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import ALL_KINDS, EXAMPLE_FILE, decision_files, normalise

from ledger import canonical
from ledger.decisions import (
    DecisionRecord,
    check_correction,
    from_json_dict,
    kind_specs,
    parse_date,
    parse_line,
)
from ledger.errors import DecisionError, InvalidPanel, MalformedDecision, UnknownKind

EXAMPLE = {d["kind"]: d for d in reversed(EXAMPLE_FILE)}  # the first example of each kind
"""One valid decision per kind."""


def line(obj: dict[str, Any]) -> str:
    return canonical.dumps(obj)


def refused(
    text: str | bytes | dict[str, Any], error: type[DecisionError] = MalformedDecision, *, field: str | None
) -> DecisionError:
    """Parse ``text``; assert it is refused with ``error`` naming ``field``; return the error."""
    with pytest.raises(DecisionError) as info:
        parse_line(line(text) if isinstance(text, dict) else text)
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    assert info.value.field == field, str(info.value)
    assert info.value.line is None  # the parser does not know the line: the importer adds it
    return info.value


def with_(kind: str, /, **changes: Any) -> dict[str, Any]:
    """The example of ``kind`` with fields changed (``hunan__form`` for ``hunan.form``)."""
    d: dict[str, Any] = copy.deepcopy(EXAMPLE[kind])
    for name, value in changes.items():
        d[name.replace("__", ".")] = value
    return d


def without(kind: str, name: str) -> dict[str, Any]:
    d: dict[str, Any] = copy.deepcopy(EXAMPLE[kind])
    del d[name]
    return d


def required_fields() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for kind in ALL_KINDS:
        out.extend((kind, name) for name in ("id", "kind", "effective", "by"))
        out.extend((kind, f.name) for f in kind_specs()[kind].fields if f.required)
    return out


# --- accepted -------------------------------------------------------------------------------


def test_every_kind_has_an_example() -> None:
    assert set(EXAMPLE) == set(ALL_KINDS) == set(kind_specs())


@pytest.mark.parametrize("obj", EXAMPLE_FILE, ids=[d["id"] for d in EXAMPLE_FILE])
def test_every_example_parses_and_writes_back(obj: dict[str, Any]) -> None:
    record = parse_line(line(obj))
    assert isinstance(record, DecisionRecord)
    assert record.id == obj["id"]
    assert record.kind == obj["kind"]
    assert record.effective.isoformat() == obj["effective"]
    assert normalise(json.loads(record.to_json(), parse_float=Decimal)) == normalise(obj)
    assert parse_line(record.to_json()) == record


GENERATED = settings(max_examples=25)


@GENERATED
@given(decision_files(kinds=ALL_KINDS, max_extra=0))
def test_generated_files_parse_line_by_line(lines: list[dict[str, Any]]) -> None:
    for obj in lines:
        record = parse_line(line(obj))
        assert normalise(json.loads(record.to_json(), parse_float=Decimal)) == normalise(obj)


def test_parsed_values_are_typed() -> None:
    record = parse_line(line(EXAMPLE["training_base.filed"]))
    assert record.effective.isoformat() == "2020-09-01"
    assert record.fields["enrolment_notice"].isoformat() == "2020-08-28"
    penalty = parse_line('{"id":"P","kind":"penalty.imposed","effective":"2022-08-02","by":"x",'
                         '"institution":"I","amount_yuan":1500.50,"reason":"r"}')  # fmt: skip
    assert penalty.fields["amount_yuan"] == Decimal("1500.50")
    assert str(penalty.fields["amount_yuan"]) == "1500.50"


def test_optional_fields_absent_or_null_are_left_out() -> None:
    case = parse_line(line(with_("case.performed", level=None, basis=None, note=None)))
    assert "level" not in case.fields
    assert case.basis is None
    assert case.note is None
    assert "level" not in case.to_json_dict()
    ordered = parse_line(line(with_("correction.ordered", technology=None)))
    assert "technology" not in ordered.fields
    evaluation = parse_line(line(EXAMPLE_FILE[21] | {"institution": None}))
    assert "institution" not in evaluation.fields


def test_empty_note_is_kept() -> None:
    assert parse_line(line(with_("use.resumed", note=""))).note == ""


def test_bom_accepted() -> None:
    text = line(EXAMPLE["technology.listed"])
    assert parse_line("\ufeff" + text) == parse_line(text)
    assert parse_line(b"\xef\xbb\xbf" + text.encode()) == parse_line(text)


def test_bytes_and_text_parse_alike() -> None:
    text = line(EXAMPLE["institution.registered"])
    assert parse_line(text.encode("utf-8")) == parse_line(text)


def test_plugin_fields_are_kept_verbatim() -> None:
    form = {"表号": "湘卫医-01", "页": 2, "附件": ["甲", {"乙": True}], "比例": Decimal("0.50")}
    record = parse_line(line(with_("use.resumed", hunan__form=form, **{"acme-x.code": None})))
    assert record.extensions == {"hunan.form": form, "acme-x.code": None}
    assert "hunan.form" not in record.fields
    assert json.loads(record.to_json(), parse_float=Decimal)["hunan.form"] == form


def test_text_may_hold_tabs_and_newlines() -> None:
    record = parse_line(line(with_("use.resumed", note="第一行\n\t第二行\r\n")))
    assert record.note == "第一行\n\t第二行\r\n"


# --- malformed lines ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ['{"id": ', "{'id': 'a'}", '{"id": "a",}', '{"id": "a"} x', "", "   "])
def test_malformed_json(text: str) -> None:
    error = refused(text, field=None)
    assert error.message.startswith("malformed JSON: ")


@pytest.mark.parametrize(
    ("text", "shown"),
    [("[1, 2]", "a list"), ('"a"', "a string"), ("1", "a number"), ("null", "null"), ("true", "a boolean")],
)
def test_not_an_object(text: str, shown: str) -> None:
    error = refused(text, field=None)
    assert error.message == f"a decision is a JSON object, not {shown}"


def test_non_utf8_bytes() -> None:
    error = refused(b'{"id": "\xff"}', field=None)
    assert error.message == "not valid UTF-8 (byte 8: invalid start byte)"
    error = refused('{"id": "湘"}'.encode("gb18030"), field=None)
    assert error.message == "not valid UTF-8 (byte 8: invalid continuation byte)"


def test_deeply_nested_json() -> None:
    error = refused('{"hunan.form": ' + "[" * 100_000 + "]" * 100_000 + "}", field=None)
    assert error.message.startswith("malformed JSON")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers(constant: str) -> None:
    text = line(EXAMPLE["penalty.imposed"]).replace('"amount_yuan":30000', f'"amount_yuan":{constant}')
    assert constant in text
    error = refused(text, field=None)
    assert error.message == f"{constant} is not a JSON number"


def test_duplicate_keys() -> None:
    text = line(EXAMPLE["use.resumed"])
    error = refused(text[:-1] + ',"id":"other"}', field="id")
    assert error.message == "the field appears twice in one object"


def test_duplicate_keys_nested() -> None:
    text = line(EXAMPLE["panel.concluded"]).replace('"votes":{', '"votes":{"胡德明":"for",', 1)
    error = refused(text, field="胡德明")
    assert error.message == "the field appears twice in one object"


# --- required fields, types, kinds ----------------------------------------------------------


@pytest.mark.parametrize(("kind", "name"), required_fields(), ids=[f"{k}-{n}" for k, n in required_fields()])
def test_missing_required_field(kind: str, name: str) -> None:
    error = refused(without(kind, name), field=name)
    assert error.message == "required field is missing"


@pytest.mark.parametrize(("kind", "name"), required_fields(), ids=[f"{k}-{n}" for k, n in required_fields()])
def test_null_required_field(kind: str, name: str) -> None:
    error = refused(with_(kind, **{name: None}), field=name)
    if name in ("id", "kind", "effective", "by"):
        assert error.message == "required field is missing"
    else:  # a kind's own field: null is a value of the wrong type
        assert error.message.endswith("got null"), error.message


def wrong_value(annotation_name: str) -> tuple[Any, str]:
    """A value of the wrong JSON type for a field, and the start of the expected message."""
    return {
        "str": (123, "expected a string, got a number"),
        "date": (20190422, "expected a date YYYY-MM-DD, got 20190422"),
        "Decimal": ("30000", "expected a number, got a string"),
        "list": ("备案表", "expected a list, got a string"),
        "dict": (["胡德明"], "expected an object, got a list"),
        "Literal": (["x"], "must be one of "),
    }[annotation_name]


def typed_fields() -> list[tuple[str, str, str]]:
    from typing import Literal, get_origin

    out = []
    for kind in ALL_KINDS:
        for f in kind_specs()[kind].fields:
            origin = get_origin(f.type)
            if origin is Literal:
                type_name = "Literal"
            elif origin in (list, dict):
                type_name = origin.__name__
            else:
                type_name = f.type.__name__
            out.append((kind, f.name, type_name))
    return out


@pytest.mark.parametrize(("kind", "name", "type_name"), typed_fields(), ids=[f"{k}-{n}" for k, n, _ in typed_fields()])
def test_wrong_type(kind: str, name: str, type_name: str) -> None:
    value, message = wrong_value(type_name)
    obj = with_(kind, **{name: value})
    if kind == "panel.concluded" and name == "panel":
        obj["outcome"] = "pass"
    error = refused(obj, field=name)
    assert error.message.startswith(message), error.message


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("id", 12, "an id is 1–200 characters with no white space or control characters"),
        ("id", "HN 2019", "an id is 1–200 characters with no white space or control characters"),
        ("id", "", "an id is 1–200 characters with no white space or control characters"),
        ("id", "x" * 201, "an id is 1–200 characters with no white space or control characters"),
        ("kind", 1, "expected a string, got a number"),
        ("by", ["卫生部"], "expected a string, got a list"),
        ("by", "   ", "must not be empty"),
        ("basis", 11, "expected a string, got a number"),
        ("basis", "", "must not be empty"),
        ("note", {"a": 1}, "expected a string, got an object"),
        ("effective", True, "expected a date YYYY-MM-DD, got true"),
    ],
)
def test_wrong_envelope(name: str, value: Any, message: str) -> None:
    error = refused(with_("use.resumed", **{name: value}), field=name)
    assert error.message == message


def test_strings_in_lists_checked_with_index() -> None:
    error = refused(with_("filing.submitted", materials=["备案表", 3]), field="materials[1]")
    assert error.message == "expected a string, got a number"


def test_unknown_kind() -> None:
    error = refused(with_("use.resumed", kind="use.paused"), UnknownKind, field="kind")
    assert error.message.startswith("unknown kind 'use.paused'; known kinds: ")
    for kind in ALL_KINDS:
        assert kind in error.message


@pytest.mark.parametrize("name", ["colour", "Hunan.form", "hunan.", ".form", "reason", "hunan form", "_position"])
def test_unknown_unprefixed_field(name: str) -> None:
    error = refused(with_("use.resumed", **{name: "x"}), field=name)
    assert error.message.startswith("unknown field for kind 'use.resumed'; its fields are institution, technology")
    assert "'hunan.form'" in error.message


# --- enumerations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name", "value", "shown"),
    [
        ("technology.listed", "class", "forbidden", '"forbidden"'),
        ("technology.reclassified", "class", "Restricted", '"Restricted"'),
        ("institution.registered", "level", "四级", '"四级"'),
        ("review.concluded", "committee", "board", '"board"'),
        ("review.concluded", "outcome", "pass", '"pass"'),
        ("case.performed", "level", 5, "5"),
        ("case.performed", "level", 0, "0"),
        ("case.performed", "level", "4", '"4"'),
        ("case.performed", "level", True, "true"),
        ("privilege.granted", "level", 5, "5"),
        ("privilege.granted", "level", Decimal("4.0"), "4.0"),
        ("case.performed", "level", Decimal("1.0"), "1.0"),
        ("panel.concluded", "panel", "audit", '"audit"'),
        ("panel.concluded", "outcome", "approved", '"approved"'),
    ],
)
def test_bad_enumeration(kind: str, name: str, value: Any, shown: str) -> None:
    error = refused(with_(kind, **{name: value}), field=name)
    assert error.message.startswith("must be one of ")
    assert error.message.endswith(f", got {shown}")


def test_enumeration_message_lists_the_choices() -> None:
    error = refused(with_("technology.listed", **{"class": "forbidden"}), field="class")
    assert error.message == (
        'must be one of "prohibited", "restricted", "class2", "class3", "clinical-research", got "forbidden"'
    )


def test_bad_vote() -> None:
    obj = with_("panel.concluded")
    obj["votes"]["胡德明"] = "abstain"
    error = refused(obj, field="votes.胡德明")
    assert error.message == 'must be one of "for", "against", got "abstain"'


# --- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["2019-02-30", "2019-02-29", "2019-13-01", "2019-00-10", "2019-04-31", "0000-01-01"])
def test_not_a_real_date(value: str) -> None:
    error = refused(with_("use.resumed", effective=value), field="effective")
    assert error.message == f"{value} is not a real date"


@pytest.mark.parametrize(
    "value",
    ["2019-2-3", "2019/02/03", "20190203", "2019-02-03T00:00:00", "2019-02-03 ", " 2019-02-03", "2019-02-03\n",
     "19-02-03", "２０１９-０２-０３", "٢٠١٩-٠٢-٠٣", "+2019-02-03"],
)  # fmt: skip
def test_not_a_date_written_yyyy_mm_dd(value: str) -> None:
    error = refused(with_("use.resumed", effective=value), field="effective")
    assert error.message == f"expected a date YYYY-MM-DD, got {json.dumps(value, ensure_ascii=False)}"


def test_leap_day_accepted() -> None:
    assert parse_line(line(with_("use.resumed", effective="2020-02-29"))).effective.isoformat() == "2020-02-29"


@pytest.mark.parametrize(
    ("kind", "name"), [("correction.ordered", "deadline"), ("training_base.filed", "enrolment_notice")]
)
def test_date_fields_checked(kind: str, name: str) -> None:
    error = refused(with_(kind, **{name: "2019-02-30"}), field=name)
    assert error.message == "2019-02-30 is not a real date"
    error = refused(with_(kind, **{name: "2019-2-3"}), field=name)
    assert error.message == 'expected a date YYYY-MM-DD, got "2019-2-3"'


def test_parse_date_directly() -> None:
    assert parse_date("2019-04-22", "x").isoformat() == "2019-04-22"
    with pytest.raises(MalformedDecision) as info:
        parse_date(None, "deadline")
    assert info.value.field == "deadline"
    assert info.value.message == "expected a date YYYY-MM-DD, got null"


# --- control characters ---------------------------------------------------------------------


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f"])
def test_control_characters_refused(char: str) -> None:
    error = refused(with_("use.suspended", reason=f"停{char}用"), field="reason")
    assert error.message == f"control character U+{ord(char):04X} at offset 1"


def test_control_characters_refused_everywhere() -> None:
    assert refused(with_("use.resumed", note="a\x1bb"), field="note").message.startswith("control character U+001B")
    assert refused(with_("use.resumed", by="\x00卫生部"), field="by").message == "control character U+0000 at offset 0"
    refused(with_("use.resumed", hunan__form={"表号": ["ok", "x\x07"]}), field="hunan.form.表号[1]")
    refused(with_("filing.submitted", materials=["备案表", "\x7f"]), field="materials[1]")
    refused(with_("use.resumed", id="HN\x01"), field="id")


def test_integers_too_large_to_store_refused() -> None:
    error = refused(with_("use.resumed", hunan__form={"n": 2**64}), field="hunan.form.n")
    assert error.message.startswith("integer out of range")
    assert (
        parse_line(line(with_("use.resumed", hunan__form={"n": 2**64 - 1}))).extensions["hunan.form"]["n"] == 2**64 - 1
    )


# --- panels ---------------------------------------------------------------------------------


def panel(**changes: Any) -> dict[str, Any]:
    return with_("panel.concluded", **changes)


def test_vote_by_a_non_member() -> None:
    obj = panel()
    obj["votes"]["王五"] = "for"
    error = refused(obj, InvalidPanel, field="votes")
    assert error.message == "'王五' voted but is not a member"


def test_vote_by_a_recused_member() -> None:
    obj = panel()
    obj["votes"]["黎春华"] = "against"
    error = refused(obj, InvalidPanel, field="votes")
    assert error.message == "'黎春华' voted but recused"


def test_recused_non_member() -> None:
    error = refused(panel(recused=["王五"]), InvalidPanel, field="recused")
    assert error.message == "'王五' recused but is not a member"


def test_member_listed_twice() -> None:
    obj = panel()
    obj["members"].append("胡德明")
    error = refused(obj, InvalidPanel, field="members")
    assert error.message == "a member is listed twice"


def test_panel_errors_are_decision_errors() -> None:
    assert issubclass(InvalidPanel, DecisionError)


@pytest.mark.parametrize("outcome", ["prohibit", "restrict", "strengthen", "no-change"])
def test_audit_with_an_evaluation_outcome(outcome: str) -> None:
    error = refused(panel(outcome=outcome), field="outcome")
    assert error.message == f"a technical-audit panel concludes pass or fail, not {outcome!r}"


@pytest.mark.parametrize("outcome", ["pass", "fail"])
def test_evaluation_with_an_audit_outcome(outcome: str) -> None:
    obj = with_("panel.concluded", panel="evaluation", outcome=outcome)
    error = refused(obj, field="outcome")
    assert (
        error.message
        == f"a evaluation panel concludes prohibit or restrict or strengthen or no-change, not {outcome!r}"
    )


@pytest.mark.parametrize("how", ["absent", "null"])
def test_technical_audit_without_institution(how: str) -> None:
    obj = panel()
    if how == "absent":
        del obj["institution"]
    else:
        obj["institution"] = None
    error = refused(obj, field="institution")
    assert error.message == "a technical audit is of an institution: required field is missing"


def test_evaluation_without_institution_accepted() -> None:
    record = parse_line(line(EXAMPLE_FILE[21]))
    assert record.fields["panel"] == "evaluation"
    assert "institution" not in record.fields


def test_panel_with_no_votes_accepted() -> None:
    # Size and majority are findings, not refusals.
    record = parse_line(line(panel(members=["甲"], recused=[], votes={})))
    assert record.fields["votes"] == {}


# --- technology references, amounts ---------------------------------------------------------


@pytest.mark.parametrize("value", ["S14", "hunan", ":S14", "hunan:", ":"])
@pytest.mark.parametrize("kind", ["case.performed", "review.concluded", "trainee.certified", "panel.concluded"])
def test_technology_reference_without_colon(kind: str, value: str) -> None:
    error = refused(with_(kind, technology=value), field="technology")
    assert error.message == f"a technology is '<catalog>:<code>' (e.g. 'hunan:S14'), got {value!r}"


def test_optional_technology_reference_checked() -> None:
    error = refused(with_("correction.ordered", technology="S14"), field="technology")
    assert error.message.startswith("a technology is '<catalog>:<code>'")


@pytest.mark.parametrize("amount", [-1, Decimal("-0.01"), Decimal("-1E+3")])
def test_negative_amount(amount: Any) -> None:
    error = refused(with_("penalty.imposed", amount_yuan=amount), field="amount_yuan")
    assert error.message == "must not be negative"


@pytest.mark.parametrize(
    ("amount", "shown"), [("100", "a string"), (True, "a boolean"), (None, "null"), ([1], "a list")]
)
def test_amount_of_the_wrong_type(amount: Any, shown: str) -> None:
    error = refused(with_("penalty.imposed", amount_yuan=amount), field="amount_yuan")
    assert error.message == f"expected a number, got {shown}"


@pytest.mark.parametrize("text", ["0", "30000", "1500.50", "1.5", "1E+3", "0.00"])
def test_amounts_kept_exactly(text: str) -> None:
    raw = line(EXAMPLE["penalty.imposed"]).replace('"amount_yuan":30000', f'"amount_yuan":{text}')
    record = parse_line(raw)
    assert str(record.fields["amount_yuan"]) == text
    assert f'"amount_yuan":{text}' in record.to_json()


# --- corrections ----------------------------------------------------------------------------


def test_correction_with_no_fields() -> None:
    error = refused(with_("decision.corrected", fields={}), field="fields")
    assert error.message == "a correction corrects at least one field"


def test_correction_fields_must_be_an_object() -> None:
    error = refused(with_("decision.corrected", fields=["amount_yuan"]), field="fields")
    assert error.message == "expected an object, got a list"


def record_of(kind: str) -> DecisionRecord:
    return parse_line(line(EXAMPLE[kind]))


@pytest.mark.parametrize("name", ["catalog", "code", "institution", "physician", "technology", "panel"])
def test_correction_of_a_subject_field_refused(name: str) -> None:
    kind = {
        "catalog": "technology.listed",
        "code": "technology.listed",
        "institution": "case.performed",
        "physician": "case.performed",
        "technology": "case.performed",
        "panel": "panel.concluded",
    }[name]
    with pytest.raises(MalformedDecision) as info:
        check_correction(record_of(kind), {name: "x"})
    assert info.value.field == f"fields.{name}"
    assert info.value.message == (
        f"'{name}' says what the decision is about: retract it and record a new decision instead"
    )


@pytest.mark.parametrize("name", ["id", "kind"])
def test_correction_of_id_or_kind_refused(name: str) -> None:
    with pytest.raises(MalformedDecision) as info:
        check_correction(record_of("penalty.imposed"), {name: "x"})
    assert info.value.field == f"fields.{name}"
    assert info.value.message == f"a correction cannot change '{name}'"


def test_correction_of_a_field_the_kind_lacks() -> None:
    with pytest.raises(MalformedDecision) as info:
        check_correction(record_of("penalty.imposed"), {"deadline": "2020-01-01"})
    assert info.value.field == "fields.deadline"
    assert info.value.message == "a penalty.imposed decision has no field 'deadline'"


def test_correction_values_checked_and_normalised() -> None:
    target = record_of("penalty.imposed")
    out = check_correction(target, {"amount_yuan": 20000, "effective": "2022-08-03", "note": "", "hunan.form": {}})
    assert out["amount_yuan"] == Decimal(20000)
    assert out["effective"].isoformat() == "2022-08-03"
    assert out["note"] == ""
    with pytest.raises(MalformedDecision) as info:
        check_correction(target, {"amount_yuan": -5})
    assert info.value.field == "fields.amount_yuan"
    with pytest.raises(MalformedDecision) as info:
        check_correction(target, {"effective": "2019-02-30"})
    assert info.value.field == "fields.effective"
    assert info.value.message == "2019-02-30 is not a real date"
    with pytest.raises(MalformedDecision) as info:
        check_correction(target, {"reason": None})
    assert info.value.field == "fields.reason"


def test_correction_may_clear_an_optional_field() -> None:
    assert check_correction(record_of("case.performed"), {"level": None}) == {"level": None}


def test_correction_keeps_a_panel_valid() -> None:
    target = record_of("panel.concluded")
    assert check_correction(target, {"outcome": "fail"}) == {"outcome": "fail"}
    with pytest.raises(InvalidPanel) as panel_info:
        check_correction(target, {"votes": {"黎春华": "for"}})
    assert panel_info.value.message == "'黎春华' voted but recused"
    with pytest.raises(MalformedDecision) as info:
        check_correction(target, {"outcome": "restrict"})
    assert info.value.field == "outcome"


# --- canonical form and digests -------------------------------------------------------------


@given(st.sampled_from(EXAMPLE_FILE), st.randoms(use_true_random=False))
def test_digest_ignores_key_order(obj: dict[str, Any], rnd: Any) -> None:
    keys = list(obj)
    rnd.shuffle(keys)
    shuffled = {k: obj[k] for k in keys}
    assert parse_line(line(shuffled)).digest() == parse_line(line(obj)).digest()


def test_digest_ignores_white_space_and_nulls_for_absent_optionals() -> None:
    obj = EXAMPLE["case.performed"]
    spaced = json.dumps(obj, ensure_ascii=True, indent=None, separators=(" , ", " : "))
    assert parse_line(spaced).digest() == parse_line(line(obj)).digest()
    absent = with_("case.performed")
    del absent["level"]
    assert parse_line(line(with_("case.performed", level=None))).digest() == parse_line(line(absent)).digest()


def test_digest_changes_with_content() -> None:
    base = parse_line(line(EXAMPLE["use.suspended"])).digest()
    assert parse_line(line(with_("use.suspended", reason="其他"))).digest() != base
    assert parse_line(line(with_("use.suspended", note=""))).digest() != base
    assert parse_line(line(with_("use.suspended", hunan__form={}))).digest() != base


def test_decimal_digests_are_stable_and_exact() -> None:
    def digest(text: str) -> bytes:
        return parse_line(
            line(EXAMPLE["penalty.imposed"]).replace('"amount_yuan":30000', f'"amount_yuan":{text}')
        ).digest()

    # 1.50 and 1.5 are different texts, so different decisions; each is stable through a round trip.
    assert digest("1.50") != digest("1.5")
    for text in ("1.50", "1.5", "1E+3", "30000"):
        record = parse_line(line(EXAMPLE["penalty.imposed"]).replace('"amount_yuan":30000', f'"amount_yuan":{text}'))
        assert record.digest() == digest(text)
        assert parse_line(record.to_json()).digest() == record.digest()


def test_digest_is_pinned() -> None:
    """The digest decides "same content" against what is already stored: it must never drift."""
    record = parse_line(line(EXAMPLE["penalty.imposed"]))
    assert canonical.dumps(record.to_json_dict(), sort_keys=True) == (
        '{"amount_yuan":30000,"by":"湖南省卫生健康委员会","effective":"2022-08-01","id":"EX-26",'
        '"institution":"44860321X43010211A1001","kind":"penalty.imposed","reason":"MTM-2018#46"}'
    )
    assert record.digest().hex() == PINNED_DIGEST


PINNED_DIGEST = "317aa7627a08ec38f011f309a9f9f60ec3a8b0a6d40dc14f9d5f20cfa852f44d"


@GENERATED
@given(decision_files(max_extra=6))
def test_to_json_round_trip_keeps_digest(lines: list[dict[str, Any]]) -> None:
    for obj in lines:
        record = parse_line(line(obj))
        again = parse_line(record.to_json())
        assert again == record
        assert again.digest() == record.digest()


def test_from_json_dict_matches_parse_line() -> None:
    for obj in EXAMPLE_FILE:
        parsed = json.loads(line(obj), parse_float=Decimal)
        assert from_json_dict(parsed) == parse_line(line(obj))
