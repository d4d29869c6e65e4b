"""Competence (ledger.competence): what cannot be a real decision is refused at import, naming file,
line and field, and nothing of the file is written; the shipped catalogues and demo still import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import plugins.chongqing
import plugins.hunan
import plugins.national
from ledger.application import LedgerApplication
from ledger.competence import Body, Competence, build, registry
from ledger.errors import IncompetentDecision, PluginError
from ledger.plugins import plugin_manager
from tests.strategies import to_jsonl

NATION = "国家卫生健康委"
HUNAN = "湖南省卫生健康委员会"
CHONGQING = "重庆市卫生健康委员会"
HOSPITAL = "44860321X43010211A1001"
OTHER_HOSPITAL = "44953360243030211A1001"

REGISTRATION = [
    {"id": "I-1", "kind": "institution.registered", "effective": "2003-09-18", "by": "长沙市卫生局",
     "institution": HOSPITAL, "name": "湘江示范医院", "province": "湖南省", "city": "长沙市", "category": "医院",
     "level": "三级", "licensing_authority": "长沙市卫生局"},
    {"id": "I-2", "kind": "institution.registered", "effective": "2003-09-18", "by": "湘潭市卫生局",
     "institution": OTHER_HOSPITAL, "name": "莲城示范医院", "province": "湖南省", "city": "湘潭市",
     "category": "医院", "level": "三级", "licensing_authority": "湘潭市卫生局"},
]  # fmt: skip


def listing(decision_id: str, *, by: str = HUNAN, catalog: str = "hunan", code: str = "S90", name: str = "示例技术",
            cls: str = "restricted", effective: str = "2019-01-01") -> dict[str, Any]:  # fmt: skip
    return {"id": decision_id, "kind": "technology.listed", "effective": effective, "by": by, "catalog": catalog,
            "code": code, "name": name, "class": cls, "version": "测试目录"}  # fmt: skip


def imported(app: LedgerApplication, *lines: dict[str, Any], source: str = "c.jsonl") -> int:
    return app.import_lines(to_jsonl(lines).splitlines(keepends=True), source=source).recorded


def refused(app: LedgerApplication, line: dict[str, Any], field: str, match: str) -> None:
    before = app.position()
    with pytest.raises(IncompetentDecision, match=match) as error:
        imported(app, listing("OK-1", code="S99"), line, source="bad.jsonl")
    assert (error.value.file, error.value.line, error.value.field) == ("bad.jsonl", 2, field)
    assert app.position() == before  # nothing of the file written, not even its valid first line


@pytest.fixture
def ledger(app: LedgerApplication) -> LedgerApplication:
    imported(app, *REGISTRATION, source="registrations.jsonl")
    for path in (plugins.national.DATA / "catalog.jsonl",):
        app.import_lines(path.read_bytes().splitlines(keepends=True), source=path.name)
    return app


def test_a_hospital_amending_the_national_or_a_provincial_catalogue_is_refused(ledger: LedgerApplication) -> None:
    """MTM-2018#10, MTM-2009#8–9: catalogues are the commission's and each province's own."""
    refused(ledger, listing("H-1", by=HOSPITAL, catalog="national", code="G99"), "by", "is an institution")
    refused(ledger, listing("H-2", by=HOSPITAL), "by", "is an institution")
    delisting = {"id": "H-3", "kind": "technology.delisted", "effective": "2024-01-01", "by": HOSPITAL,
                 "catalog": "national", "code": "P18-02"}  # fmt: skip
    refused(ledger, delisting, "by", "is an institution")


def test_a_province_changes_its_own_catalogue_only(ledger: LedgerApplication) -> None:
    """MTM-2009#9, MTM-2018#10: a province for its own catalogue codes only."""
    refused(ledger, listing("P-1", catalog="national", code="G99"), "by", "does not keep the national catalogue")
    refused(ledger, listing("P-2", catalog="chongqing"), "by", "does not keep the chongqing catalogue")
    refused(ledger, listing("P-3", by="长沙市卫生健康委员会"), "by", "does not keep the hunan catalogue")
    reclassified = {"id": "P-4", "kind": "technology.reclassified", "effective": "2024-01-01", "by": HUNAN,
                    "catalog": "national", "code": "P18-02", "class": "restricted"}  # fmt: skip
    refused(ledger, reclassified, "by", "does not keep the national catalogue")
    assert imported(ledger, listing("OWN-1", by=CHONGQING, catalog="chongqing", code="Q01")) == 1
    assert imported(ledger, listing("OWN-2", by="湖南省卫生厅", code="S91", effective="2012-01-01")) == 1


def test_a_province_lists_no_prohibited_technology(ledger: LedgerApplication) -> None:
    """MTM-2018#9–10: only the nation sets the prohibited list."""
    refused(ledger, listing("X-1", cls="prohibited"), "class", "only the national commission sets the prohibited")
    imported(ledger, listing("X-2", code="S92"))
    to_prohibited = {"id": "X-3", "kind": "technology.reclassified", "effective": "2024-01-01", "by": HUNAN,
                     "catalog": "hunan", "code": "S92", "class": "prohibited"}  # fmt: skip
    refused(ledger, to_prohibited, "class", "prohibited list")
    by_correction = {"id": "X-4", "kind": "decision.corrected", "effective": "2024-01-01", "by": HUNAN,
                     "corrects": "X-2", "fields": {"class": "prohibited"}}  # fmt: skip
    refused(ledger, by_correction, "class", "prohibited list")


def test_a_province_lists_nothing_the_nation_prohibits_as_of_that_day(ledger: LedgerApplication) -> None:
    """MTM-2009#9: 代孕技术 is prohibited nationally from 2015-06-29 (national:P18-02, 国卫医发〔2015〕71号)."""
    refused(ledger, listing("Y-1", name="代孕技术"), "name", r"prohibited nationally \(national:P18-02\)")
    refused(ledger, listing("Y-2", name=" 代孕 技术", cls="class2"), "name", "MTM-2009#9")
    refused(ledger, listing("Y-3", name="异种干细胞治疗技术", cls="class2", effective="2012-03-01"), "name", "P09-01")
    # Before the nation prohibited it, a listing of that name was not against MTM-2009#9.
    assert imported(ledger, listing("Y-4", name="代孕技术", code="S93", effective="2014-01-01")) == 1
    keep = {"id": "Y-5", "kind": "technology.reclassified", "effective": "2019-01-01", "by": HUNAN,
            "catalog": "hunan", "code": "S93", "class": "restricted"}  # fmt: skip
    refused(ledger, keep, "code", "prohibited nationally")
    rename = {"id": "Y-6", "kind": "decision.corrected", "effective": "2019-01-01", "by": HUNAN,
              "corrects": "OK-0", "fields": {"name": "代孕技术"}}  # fmt: skip
    imported(ledger, listing("OK-0", code="S94"))
    refused(ledger, rename, "name", "prohibited nationally")


def test_a_correction_is_judged_as_the_decision_it_makes(ledger: LedgerApplication) -> None:
    """The author may correct its decision, but not into one it could not make (MTM-2018#10)."""
    imported(ledger, listing("M-1", code="S96"))
    to_hospital = {"id": "M-2", "kind": "decision.corrected", "effective": "2020-01-01", "by": HUNAN,
                   "corrects": "M-1", "fields": {"by": HOSPITAL}}  # fmt: skip
    refused(ledger, to_hospital, "by", "is an institution")
    assert imported(ledger, to_hospital | {"fields": {"version": "修订"}}) == 1


def test_a_national_prohibition_in_the_same_file_counts(app: LedgerApplication) -> None:
    prohibition = listing("N-1", by=NATION, catalog="national", code="P99", name="新禁止技术", cls="prohibited",
                          effective="2019-01-01")  # fmt: skip
    with pytest.raises(IncompetentDecision) as error:
        imported(app, prohibition, listing("Z-1", name="新禁止技术", effective="2020-01-01"))
    assert (error.value.line, error.value.field) == (2, "name")
    assert app.position() == 0


def test_decisions_are_changed_by_their_author_or_a_body_above(ledger: LedgerApplication) -> None:
    imported(ledger, listing("A-1", code="S95"))
    case = {"id": "CASE-1", "kind": "institution.registered", "effective": "2003-09-18", "by": "长沙市卫生局",
            "institution": "4486XXXX", "name": "某医院", "province": "湖南省", "city": "长沙市", "category": "医院",
            "level": "三级", "licensing_authority": "长沙市卫生局"}  # fmt: skip
    imported(ledger, case)
    retract = {"id": "R-1", "kind": "decision.retracted", "effective": "2024-01-01", "by": HOSPITAL,
               "retracts": "A-1", "reason": "x"}  # fmt: skip
    refused(ledger, retract, "by", "is an institution: it retracts only its own decisions")
    refused(ledger, retract | {"by": CHONGQING}, "by", "nor a body above it")
    refused(ledger, retract | {"by": "长沙市卫生健康委员会"}, "by", "nor a body above it")
    assert imported(ledger, retract | {"by": NATION}) == 1  # the commission is above the province


def test_an_institution_decides_for_itself_only(ledger: LedgerApplication) -> None:
    """MTM-2018#6: an institution's cases, filings and privileges are its own; no hospital fines."""
    review = {
        "id": "F-1",
        "kind": "review.concluded",
        "effective": "2019-05-06",
        "by": OTHER_HOSPITAL,
        "institution": HOSPITAL,
        "technology": "national:P18-02",
        "committee": "ethics",
        "outcome": "approved",
    }
    refused(ledger, review, "by", "is another institution")
    fine = {"id": "F-2", "kind": "penalty.imposed", "effective": "2020-01-01", "by": HOSPITAL,
            "institution": HOSPITAL, "amount_yuan": 1000, "reason": "x"}  # fmt: skip
    refused(ledger, fine, "by", "is a health authority's decision")
    stop = {"id": "F-4", "kind": "use.stopped", "effective": "2020-01-01", "by": OTHER_HOSPITAL,
            "institution": HOSPITAL, "technology": "national:P18-02", "reason": "x"}  # fmt: skip
    refused(ledger, stop, "by", "is another institution")
    completion = {"id": "F-3", "kind": "filing.completed", "effective": "2020-01-01", "by": OTHER_HOSPITAL,
                  "institution": HOSPITAL, "technology": "national:P18-02"}  # fmt: skip
    refused(ledger, completion, "by", "is a health authority's decision")


@pytest.mark.parametrize("demo", [False, True])
def test_the_shipped_catalogues_and_demo_import(app: LedgerApplication, demo: bool) -> None:
    pm = plugin_manager()
    paths = [Path(p) for ps in pm.hook.ledger_reference_data() for p in ps]
    if demo:
        paths += [Path(p) for ps in pm.hook.ledger_demo_data() for p in ps]
    for path in sorted(paths, key=lambda p: ("demo" in p.name, "national" not in str(p), str(p))):
        app.import_lines(path.read_bytes().splitlines(keepends=True), source=path.name)
    assert app.position() > 0


def test_plugins_declare_bodies_the_core_holds_no_names_of() -> None:
    r = registry(plugin_manager())
    assert r.above(NATION, "长沙市卫生局")
    assert r.same_or_above("湖南省卫生健康委员会", "湖南省卫生厅")
    assert r.regulates("重庆市卫生健康委员会", "chongqing", "渝中区卫生局")
    assert not r.regulates("湘潭市卫生健康委员会", "hunan", "长沙市卫生局")
    assert r.competence("filing.completed", "hunan").article == "HN-2018#二(二)"  # type: ignore[union-attr]
    assert r.competence("filing.completed", "beijing").article == "MTM-2018#11"  # type: ignore[union-attr]
    source = (Path(__file__).parents[2] / "ledger" / "competence.py").read_text(encoding="utf-8")
    assert "湖南" not in source and "重庆" not in source
    with pytest.raises(PluginError):
        build([[Body(("甲",), "hunan", "city")], [Body(("甲",), "chongqing", "district")]])
    assert build([[Competence("filing.completed", "filing-authority", "X#1", jurisdiction="x")]]).competences
