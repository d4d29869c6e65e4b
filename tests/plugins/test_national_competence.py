"""``national.competence``: real decisions by a body not competent to make them are recorded and
flagged, citing the article that says who decides (docs/decisions.md, "Who may decide what").

Judged on small hand-made histories (``plugin_testing.BASE``: hospital H1 in 长沙市, licensed by
长沙市卫生健康委员会), and through a real ledger on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from typing import Any

from plugin_testing import BASE, completed, hunan_history, judge, log_of

from ledger.application import LedgerApplication
from ledger.competence import Body, Competence
from ledger.hookspecs import hookimpl
from ledger.plugins import make_plugin_manager
from tests.strategies import to_jsonl

DAY = date(2026, 1, 1)
CITY = "长沙市卫生健康委员会"


def competence(*decisions: dict[str, Any], province: str = "湖南省") -> set[tuple[str, str, tuple[str, ...]]]:
    findings = judge(hunan_history(*decisions, province=province), as_of=DAY)
    return {(f.article, f.severity, f.decisions) for f in findings if f.rule == "national.competence"}


def use(kind: str, did: str, day: str, by: str, **extra: Any) -> dict[str, Any]:
    return {"id": did, "kind": kind, "effective": day, "by": by, "institution": "H1", "technology": "hunan:S14",
            **extra}  # fmt: skip


def test_a_hospital_lifting_its_citys_suspension_is_flagged() -> None:
    """MTM-2018#41: only the body that ordered a suspension, or one above it, lifts it."""
    suspension = use("use.suspended", "S-1", "2020-01-01", CITY, reason="MTM-2018#41")
    found = competence(suspension, use("use.resumed", "R-1", "2020-02-01", "H1"))
    assert found == {("MTM-2018#41", "serious", ("S-1", "R-1"))}
    # Lifted by the city itself, or by the province above it: nothing to flag.
    assert competence(suspension, use("use.resumed", "R-1", "2020-02-01", CITY)) == set()
    assert competence(suspension, use("use.resumed", "R-1", "2020-02-01", "湖南省卫生健康委员会")) == set()
    # A suspension the hospital ordered itself (MTM-2018#25), lifted by it.
    own = use("use.suspended", "S-2", "2020-01-01", "H1", reason="MTM-2018#25(3)")
    assert competence(own, use("use.resumed", "R-2", "2020-02-01", "H1")) == set()
    # Another city lifting it: flagged too.
    found = competence(suspension, use("use.resumed", "R-3", "2020-02-01", "湘潭市卫生健康委员会"))
    assert found == {("MTM-2018#41", "serious", ("S-1", "R-3"))}


def test_a_completion_by_another_authority_than_the_licensing_one_is_flagged() -> None:
    """HN-2018#二(二): filed with, and completed by, the authority that issued the licence."""
    assert competence(completed("F-1", "2019-05-14")) == set()
    assert competence(completed("F-1", "2019-05-14", by="湖南省卫生健康委员会")) == set()  # above it
    found = competence(completed("F-2", "2019-05-14", by="湘潭市卫生健康委员会"))
    assert found == {("HN-2018#二(二)", "irregular", ("F-2",))}
    found = competence(completed("F-3", "2019-05-14", by="重庆市卫生健康委员会"))
    assert found == {("HN-2018#二(二)", "irregular", ("F-3",))}
    # A body no plugin declares is not judged: the ledger cannot tell who it is.
    assert competence(completed("F-4", "2019-05-14", by="某某委员会")) == set()


def test_chongqing_completions_cite_cq_2017() -> None:
    """CQ-2017#二(二): a district's institution files with the district, restricted ones with the city."""
    registration = {**BASE[4], "province": "重庆市", "city": "渝中区", "licensing_authority": "渝中区卫生局"}
    log = log_of([*BASE[:4], registration, completed("F-1", "2019-05-14", by="重庆市卫生健康委员会"),
                  completed("F-2", "2019-05-14", by="江北区卫生健康委员会")])  # fmt: skip
    found = {(f.article, f.decisions) for f in judge(log, as_of=DAY) if f.rule == "national.competence"}
    assert found == {("CQ-2017#二(二)", ("F-2",))}


def test_orders_and_fines_by_a_body_without_jurisdiction_are_flagged() -> None:
    """MTM-2018#35, #41: 县级以上地方卫生行政部门 over their own region."""
    fine = {"id": "P-1", "kind": "penalty.imposed", "effective": "2020-01-01", "by": "重庆市卫生健康委员会",
            "institution": "H1", "amount_yuan": 1000, "reason": "MTM-2018#41"}  # fmt: skip
    assert competence(fine) == {("MTM-2018#35, #41", "serious", ("P-1",))}
    assert competence(fine | {"by": CITY}) == set()
    assert competence(fine | {"by": "国家卫生健康委"}) == set()
    order = {"id": "O-1", "kind": "correction.ordered", "effective": "2020-01-01", "by": "湘潭市卫生健康委员会",
             "institution": "H1", "deadline": "2020-02-01"}  # fmt: skip
    assert competence(order) == {("MTM-2018#35, #41", "serious", ("O-1",))}
    stop = use("use.stopped", "X-1", "2020-01-01", "H1", reason="MTM-2018#25(1)")
    assert competence(stop) == set()


def test_the_demo_has_no_competence_finding() -> None:
    from plugin_testing import demo_log

    assert [f for f in judge(demo_log(), as_of=DAY) if f.rule == "national.competence"] == []


def test_flagged_through_a_ledger(app: LedgerApplication) -> None:
    """Recorded (not refused) and flagged, on SQLite and PostgreSQL."""
    from projections.views import Views

    suspension = use("use.suspended", "S-1", "2020-01-01", CITY, reason="MTM-2018#41")
    lines = [*BASE, suspension, use("use.resumed", "R-1", "2020-02-01", "H1")]
    assert app.import_lines(to_jsonl(lines).splitlines(keepends=True), source="f.jsonl").recorded == len(lines)
    findings = [f for f in Views(app).trail(institution="H1").findings if f.rule == "national.competence"]
    assert [(f.article, f.decisions) for f in findings] == [("MTM-2018#41", ("S-1", "R-1"))]


class ExampleCity:
    """A plugin that declares one more city of Hunan (made up): its bodies are in its own plugin
    manager's registry only, not in the process-wide one."""

    @hookimpl
    def ledger_bodies(self) -> list[Body | Competence]:
        return [Body(names=(EXAMPLE_CITY,), jurisdiction="hunan", role="city", parent="湖南省卫生健康委员会",
                     place="示例市")]  # fmt: skip


EXAMPLE_CITY = "示例市卫生健康委员会"


def test_judged_against_the_bodies_of_the_plugins_that_built_the_views(ledger_url: str) -> None:
    """HN-2018#二(二): a completion by a city another plugin declares is judged when that plugin built
    the views (``Facts.bodies``); the process-wide plugins do not know the city, so do not judge it."""
    from projections.views import Views

    pm = make_plugin_manager(extra=(("example_city", ExampleCity()),))
    lines = [*BASE, completed("F-9", "2019-05-14", by=EXAMPLE_CITY)]
    with LedgerApplication.open(ledger_url, plugins=pm) as app:
        app.import_lines(to_jsonl(lines).splitlines(keepends=True), source="f.jsonl")
        findings = [f for f in Views(app).trail(institution="H1").findings if f.rule == "national.competence"]
        assert [(f.article, f.decisions) for f in findings] == [("HN-2018#二(二)", ("F-9",))]
    with LedgerApplication.open(ledger_url) as app:
        assert not [f for f in Views(app).trail(institution="H1").findings if f.rule == "national.competence"]
