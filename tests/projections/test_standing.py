"""The standing of a use, one model for the public lists and the rules (ARCHITECTURE.md rule 9).

Each test is a small decision file and says what the lists and the rules answer, citing its
article, on SQLite and PostgreSQL (the ``app`` fixture). The property at the end: for generated
histories, the uses the public list shows as filed on a day, as known at a position, are exactly
the uses whose standing the rules' facts say is filed that day.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import LedgerApplication
from projections.runner import NOW
from projections.standing import FILED, PUBLISHED
from projections.views import FilingRow, Views
from tests.conftest import run_cli
from tests.strategies import (
    STANDING_HOSPITALS,
    STANDING_LEAD,
    STANDING_TECHNOLOGIES,
    standing_base,
    standing_histories,
    to_jsonl,
)

H1 = STANDING_HOSPITALS[0]  # in Hunan: grandfather date 2019-01-31 (HN-2018#六(一))
TECH = STANDING_TECHNOLOGIES[0]


def record(app: LedgerApplication, lines: list[dict[str, Any]]) -> None:
    app.import_lines(to_jsonl(lines).splitlines(keepends=True), source="<test>")


def decision(did: str, kind: str, day: str, **fields: Any) -> dict[str, Any]:
    by = fields.pop("by", H1)
    return {"id": did, "kind": kind, "effective": day, "by": by, **fields}


def submitted(did: str, day: str, institution: str = H1, tech: str = TECH) -> dict[str, Any]:
    return decision(
        did,
        "filing.submitted",
        day,
        by=institution,
        institution=institution,
        technology=tech,
        technical_lead=STANDING_LEAD,
        materials=["临床应用备案表"],
    )


def completed(did: str, day: str, institution: str = H1, tech: str = TECH) -> dict[str, Any]:
    return decision(did, "filing.completed", day, by="长沙市卫生健康委员会", institution=institution, technology=tech)


def use(did: str, kind: str, day: str, **fields: Any) -> dict[str, Any]:
    return decision(did, kind, day, institution=H1, technology=TECH, **fields)


def case(did: str, day: str) -> dict[str, Any]:
    return use(did, "case.performed", day, physician=STANDING_LEAD, case=did)


def views_of(app: LedgerApplication, lines: list[dict[str, Any]]) -> Views:
    record(app, [*standing_base(), *lines])
    return Views(app)


def filing(views: Views, day: date, known_at: int | None = None) -> FilingRow | None:
    rows = [f for f in views.filings("hunan", as_of=day, known_at=known_at) if f.technology == TECH]
    return rows[0] if rows else None


def public(views: Views, day: date, known_at: int | None = None) -> set[tuple[str, str, str]]:
    return {
        (f.institution, f.technology, f.status) for f in views.public_filings("hunan", as_of=day, known_at=known_at)
    }


def rules_standing(views: Views, day: date, known_at: int = NOW - 1) -> str:
    facts = views.facts_for(H1, as_of=day, known_at=known_at)
    return facts.use_standing((H1, TECH), day)


def rules_found(views: Views, day: date) -> set[tuple[str, str]]:
    return {(f.rule, f.article) for f in views.trail(institution=H1, as_of=day).findings}


# --- a retracted submission voids the filing it started (MTM-2018#11, #40) ----------------------------


def test_mtm2018_11_a_retracted_submission_voids_its_completion(app: LedgerApplication) -> None:
    views = views_of(app, [submitted("S1", "2019-03-01"), completed("K1", "2019-03-10")])
    known = app.position()
    record(app, [decision("R1", "decision.retracted", "2019-04-01", retracts="S1", reason="提交有误")])
    views = Views(app)
    day = date(2019, 6, 1)
    row = filing(views, day)
    assert row is not None and row.status == "void" and row.filed_on is None
    assert public(views, day) == set()  # MTM-2018#40: only uses 经备案 are published
    assert rules_standing(views, day) == "void"
    assert ("national.completion-without-submission", "MTM-2018#11") in rules_found(views, day)
    # A retraction takes the submission out of every day, also those before its own date.
    early = date(2019, 3, 15)
    assert (filing(views, early).status, rules_standing(views, early)) == ("void", "void")  # type: ignore[union-attr]
    # As known before the retraction, it was filed, on the list and in the rules alike.
    assert public(views, day, known) == {(H1, TECH, FILED)}
    assert rules_standing(views, day, known) == FILED


def test_mtm2018_11_a_completion_with_no_submission_is_void_and_flagged(app: LedgerApplication) -> None:
    views = views_of(app, [case("C1", "2019-03-01"), completed("K1", "2019-03-10"), case("C2", "2019-05-01")])
    day = date(2019, 6, 1)
    assert filing(views, day).status == "void"  # type: ignore[union-attr]
    assert public(views, day) == set()
    found = rules_found(views, day)
    assert ("national.completion-without-submission", "MTM-2018#11") in found
    # Not filed for the rules either: the case after the deadline is use without a filing.
    assert ("national.unfiled-use", "MTM-2018#11, HN-2018#二(二)") in found


# --- MTM-2018#49, HN-2018#六(一): a filing from before the regime lapses unless filed again -----------


def test_hn2018_6_1_a_2016_filing_not_renewed_by_2019_01_31_lapses(app: LedgerApplication) -> None:
    views = views_of(
        app,
        [
            submitted("S1", "2016-04-06"),
            completed("K1", "2016-04-20"),
            case("C1", "2018-06-01"),
            case("C2", "2019-03-01"),
        ],
    )
    assert public(views, date(2019, 1, 31)) == {(H1, TECH, FILED)}
    assert rules_standing(views, date(2019, 1, 31)) == FILED
    after = date(2019, 2, 1)
    assert filing(views, after).status == "lapsed"  # type: ignore[union-attr]
    assert public(views, after) == set()
    assert rules_standing(views, after) == "lapsed"
    assert ("national.unfiled-use", "MTM-2018#49, HN-2018#六(一)") in rules_found(views, date(2019, 6, 1))


def test_mtm2018_49_a_2016_filing_renewed_in_time_stays_filed(app: LedgerApplication) -> None:
    views = views_of(
        app,
        [
            submitted("S1", "2016-04-06"),
            completed("K1", "2016-04-20"),
            case("C1", "2018-06-01"),
            submitted("S2", "2019-01-22"),
            completed("K2", "2019-01-30"),
            case("C2", "2019-03-01"),
        ],
    )
    row = filing(views, date(2019, 6, 1))
    assert row is not None and (row.status, row.filed_on) == (FILED, date(2019, 1, 30))
    assert not {r for r, _ in rules_found(views, date(2019, 6, 1))} & {"national.unfiled-use", "national.late-filing"}


# --- stops and resumptions keep their recorded dates (MTM-2018#25, #41-#44) ----------------------------


def test_mtm2018_11_refiling_after_a_stop_is_a_filing_date_not_a_stop_date(app: LedgerApplication) -> None:
    views = views_of(
        app,
        [
            submitted("S1", "2019-03-01"),
            completed("K1", "2019-03-10"),
            use("X1", "use.stopped", "2020-01-10", reason="MTM-2018#25(3)"),
            submitted("S2", "2021-01-05"),
            completed("K2", "2021-01-20"),
        ],
    )
    stopped = filing(views, date(2020, 6, 1))
    assert stopped is not None and (stopped.status, stopped.since, stopped.halted_on) == (
        "stopped",
        date(2020, 1, 10),
        date(2020, 1, 10),
    )
    pending = filing(views, date(2021, 1, 10))  # the new submission does not move the stop's date
    assert pending is not None and (pending.status, pending.since) == ("stopped", date(2020, 1, 10))
    refiled = filing(views, date(2021, 2, 1))
    assert refiled is not None and (refiled.status, refiled.filed_on, refiled.halted_on) == (
        FILED,
        date(2021, 1, 20),
        None,
    )
    assert public(views, date(2021, 2, 1)) == {(H1, TECH, FILED)}
    assert rules_standing(views, date(2021, 2, 1)) == FILED


def test_mtm2018_25_a_resumption_after_a_stop_is_honoured_by_the_rules(app: LedgerApplication) -> None:
    views = views_of(
        app,
        [
            case("C0", "2019-02-20"),
            submitted("S1", "2019-03-01"),
            completed("K1", "2019-03-10"),
            use("X1", "use.stopped", "2020-01-10", reason="MTM-2018#25(3)"),
            case("C1", "2020-02-01"),
            use("X2", "use.resumed", "2020-03-01"),
            case("C2", "2020-04-01"),
        ],
    )
    stopped = filing(views, date(2020, 2, 15))
    assert stopped is not None and (stopped.status, stopped.since) == ("stopped", date(2020, 1, 10))
    assert rules_standing(views, date(2020, 2, 15)) == "stopped"
    assert public(views, date(2020, 4, 1)) == {(H1, TECH, FILED)}
    assert rules_standing(views, date(2020, 4, 1)) == FILED
    halted = [
        f.decisions
        for f in views.trail(institution=H1, as_of=date(2020, 6, 1)).findings
        if f.rule == "national.use-while-suspended"
    ]
    assert halted == [("C1", "X1")]  # the case while stopped; not the one after the resumption


# --- the catalogue: prohibited and delisted technologies are not filed (MTM-2018#9-#10, #40) -----------


def test_mtm2018_9_a_technology_reclassified_prohibited_is_not_filed(app: LedgerApplication) -> None:
    catalog, code = TECH.split(":")
    views = views_of(
        app,
        [
            submitted("S1", "2019-03-01"),
            completed("K1", "2019-03-10"),
            decision(
                "Y1",
                "technology.reclassified",
                "2021-01-01",
                by="国家卫生健康委",
                catalog=catalog,
                code=code,
                **{"class": "prohibited"},
            ),
        ],
    )
    assert public(views, date(2020, 12, 31)) == {(H1, TECH, FILED)}
    assert filing(views, date(2021, 2, 1)).status == "prohibited"  # type: ignore[union-attr]
    assert public(views, date(2021, 2, 1)) == set()
    assert rules_standing(views, date(2021, 2, 1)) == "prohibited"


def test_mtm2018_40_a_delisted_technology_is_not_filed_with_a_blank_name(app: LedgerApplication) -> None:
    catalog, code = TECH.split(":")
    views = views_of(
        app,
        [
            submitted("S1", "2019-03-01"),
            completed("K1", "2019-03-10"),
            decision("Y1", "technology.delisted", "2022-04-20", by="国家卫生健康委", catalog=catalog, code=code),
        ],
    )
    row = filing(views, date(2022, 5, 1))
    assert row is not None and (row.status, row.technology_name) == ("delisted", "")
    assert public(views, date(2022, 5, 1)) == set()
    assert rules_standing(views, date(2022, 5, 1)) == "delisted"


# --- MTM-2018#40: ledger disclosure and ledger publish answer from one query ---------------------------


def test_mtm2018_40_disclosure_and_publish_list_the_same_uses(ledger_url: str, tmp_path: Path) -> None:
    h2 = STANDING_HOSPITALS[1]
    lines = [
        *standing_base(),
        submitted("S1", "2019-03-01"),
        completed("K1", "2019-03-10"),  # filed
        submitted("S2", "2019-03-01", h2),
        decision(
            "J2",
            "filing.rejected",
            "2019-03-20",
            by="长沙市卫生健康委员会",
            institution=h2,
            technology=TECH,
            reason="材料不全",
        ),
        submitted("S3", "2019-03-01", tech=STANDING_TECHNOLOGIES[1]),  # submitted, not completed
    ]
    path = tmp_path / "d.jsonl"
    path.write_bytes(to_jsonl(lines))
    assert run_cli(["import", str(path)], ledger_url).exit_code == 0
    shown = run_cli(["disclosure", "--province", "hunan", "--as-of", "2019-06-01", "--format", "json"], ledger_url)
    listed = {(r["technology"], r["institution_name"], r["status"]) for r in json.loads(shown.output)["filings"]}
    assert listed == {(TECH, "湘江测试医院", FILED)}
    site = tmp_path / "site"
    assert (
        run_cli(["publish", "--out", str(site), "--province", "hunan", "--as-of", "2019-06-01"], ledger_url).exit_code
        == 0
    )
    page = (site / "hunan" / "filings.html").read_text(encoding="utf-8")
    assert "湘江测试医院" in page and "星城测试医院" not in page  # the rejected one is on neither


# --- the property -----------------------------------------------------------------------------------


DAYS = [
    date(2018, 12, 1),
    date(2019, 1, 31),
    date(2019, 2, 1),
    date(2019, 2, 2),
    date(2019, 6, 1),
    date(2020, 3, 1),
    date(2021, 6, 1),
    date(2023, 1, 1),
]


@given(history=standing_histories(), picks=st.lists(st.integers(0, 10_000), min_size=3, max_size=3))
# ``new_ledger_url`` is a factory: each example asks it for a fresh ledger.
@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_public_list_shows_filed_exactly_what_the_rules_treat_as_filed(
    new_ledger_url: Any, history: list[dict[str, Any]], picks: list[int]
) -> None:
    """MTM-2018#40 (the list), #11, #25, #49 (the rules): on every day, as known at every position,
    the public list's standing of each use is the rules' (filed, suspended or stopped), and no
    other use is published."""
    app = LedgerApplication.open(new_ledger_url())
    try:
        record(app, standing_base())
        base = app.position()
        for line in history:  # one decision per write: every position is a --known-at to ask about
            record(app, [line])
        views = Views(app)
        end = app.position()
        positions = sorted({NOW - 1, end, *(base + p % (end - base + 1) for p in picks)})
        for known_at in positions:
            for day in DAYS:
                listed = {
                    (f.institution, f.technology): f.status for f in views.public_filings(as_of=day, known_at=known_at)
                }
                judged: dict[tuple[str, str], str] = {}
                for institution in STANDING_HOSPITALS:
                    facts = views.facts_for(institution, as_of=day, known_at=known_at)
                    for key in facts.uses:
                        standing = facts.use_standing(key, day)
                        if standing in PUBLISHED:
                            judged[key] = standing
                assert listed == judged, (day, known_at)
                assert {k for k, s in listed.items() if s == FILED} == {k for k, s in judged.items() if s == FILED}
    finally:
        app.close()


def test_mtm2018_11_the_plot_counts_filings_as_the_standing_has_them(app: LedgerApplication) -> None:
    """MTM-2018#11, #40: a completion counts in filings-over-time when it filed a live submission."""
    from projections.plots import build_filings_over_time

    h2 = STANDING_HOSPITALS[1]
    views = views_of(
        app, [submitted("S1", "2019-03-01"), completed("K1", "2019-03-10"), completed("K2", "2019-04-10", h2)]
    )  # no submission: void
    table = build_filings_over_time(views, {"province": "hunan", "as-of": "2019-12-31"})
    counted = {r["month"]: r["filings"] for r in table.rows if r["filings"]}
    assert counted == {"2019-03": 1}


def test_cq2017_2_2_a_void_completion_does_not_file_a_chongqing_use(app: LedgerApplication) -> None:
    """CQ-2017#二(二): a case after a completion with no submission is still use before filing."""
    q1 = "50010000000000011A1001"
    city = "重庆市卫生和计划生育委员会"
    lines = [
        decision(
            "Q-I",
            "institution.registered",
            "2010-01-01",
            by=city,
            institution=q1,
            name="山城测试医院",
            province="重庆市",
            city="渝中区",
            category="医院",
            level="三级",
            licensing_authority=city,
        ),
        decision(
            "Q-P",
            "physician.registered",
            "2010-01-01",
            by=city,
            physician=STANDING_LEAD,
            name="胡德明",
            institution=q1,
            title="主任医师",
        ),
        decision(
            "Q-C0",
            "case.performed",
            "2017-07-03",
            by=q1,
            institution=q1,
            technology=TECH,
            physician=STANDING_LEAD,
            case="Q-C0",
        ),
        decision("Q-K", "filing.completed", "2017-07-10", by=city, institution=q1, technology=TECH),
        decision(
            "Q-C1",
            "case.performed",
            "2017-09-01",
            by=q1,
            institution=q1,
            technology=TECH,
            physician=STANDING_LEAD,
            case="Q-C1",
        ),
    ]
    views = views_of(app, lines)
    found = {(f.rule, f.decisions) for f in views.trail(institution=q1, as_of=date(2017, 12, 31)).findings}
    assert ("chongqing.use-before-filing", ("Q-C1",)) in found
