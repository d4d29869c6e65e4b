"""The views of the shipped reference history, case by case, as a careful reader of the seeds
would write them by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from cli import import_reference
from ledger.application import LedgerApplication
from ledger.plugins import plugin_manager
from projections.views import Views

XIANGJIANG = "44860321X43010211A1001"  # 湘江示范医院, 长沙
XINGCHENG = "44871105643010521A1001"  # 星城示范妇幼保健院, 长沙
LIANCHENG = "44953360243030211A1001"  # 莲城示范医院, 湘潭


def _files(hook: str) -> list[Path]:
    return sorted({Path(p) for c in getattr(plugin_manager().hook, hook)() for p in c or ()}, key=str)


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Views]:
    app = LedgerApplication.open(tmp_path_factory.mktemp("reference") / "ledger.sqlite")
    import_reference(app, _files("ledger_reference_data"))
    import_reference(app, _files("ledger_demo_data"))
    yield Views(app)
    app.close()


def restricted(views: Views, province: str, day: date) -> set[str]:
    return {e.ref for e in views.catalog(province, as_of=day) if e.tech_class == "restricted"}


def test_hunan_catalogue_2019_has_44_restricted_technologies(views: Views) -> None:
    """HN-2018 annex 1: national G01–G15 and Hunan's S01–S29, in force from 2018-11-19."""
    refs = restricted(views, "hunan", date(2019, 1, 1))
    assert len(refs) == 44
    assert {f"national:G{i:02d}" for i in range(1, 16)} <= refs
    assert {f"hunan:S{i:02d}" for i in range(1, 30)} <= refs


def test_hunan_catalogue_before_hn_2018_has_only_the_national_list(views: Views) -> None:
    """Before 2018-11-19 Hunan's own list was not in force; the 2015 national list was."""
    assert restricted(views, "hunan", date(2018, 11, 18)) == {f"national:G{i:02d}" for i in range(1, 16)}


def test_2022_national_revision_delists_five_and_lists_two(views: Views) -> None:
    """国家限制类技术目录（2022年版）, in force 2022-04-20 (DOMAIN.md)."""
    before = restricted(views, "hunan", date(2022, 4, 19))
    after = restricted(views, "hunan", date(2022, 4, 20))
    assert before - after == {"national:G05", "national:G09", "national:G12", "national:G14", "national:G15"}
    assert after - before == {"national:G16", "national:G17"}
    assert len(after) == 41


def test_prohibited_lists_follow_the_regime_in_force(views: Views) -> None:
    """MTM-2009#58 from 2009; the prohibited examples of 国卫医发〔2015〕71号 (seeds/001, restated by
    HN-2018 §二(一)) from 2015-06-29, the day 克隆治疗技术 (C3-01) became prohibited with them."""

    def prohibited(day: date) -> set[str]:
        return {e.ref for e in views.catalog(as_of=day) if e.tech_class == "prohibited"}

    assert prohibited(date(2010, 1, 1)) == {"national:P09-01", "national:P09-02", "national:P09-03"}
    examples = {"national:C3-01", *(f"national:P18-0{i}" for i in range(1, 5))}
    assert examples <= prohibited(date(2015, 6, 29))
    assert examples.isdisjoint(prohibited(date(2015, 6, 28)))


def test_chongqing_catalogue_is_the_national_one(views: Views) -> None:
    """CQ-2017 names no technology of its own (its class-2 list is in a document not in the seeds)."""
    day = date(2020, 1, 1)
    assert restricted(views, "chongqing", day) == restricted(views, None, day)  # type: ignore[arg-type]


def test_hunan_filings_list_dates_and_authorities(views: Views) -> None:
    """MTM-2018#40: institutions filed per restricted technology, with filing date and authority."""
    rows = {(f.institution, f.technology): f for f in views.filings("hunan", as_of=date(2019, 12, 31))}
    s14 = rows[(XIANGJIANG, "hunan:S14")]
    assert (s14.status, s14.filed_on, s14.authority) == ("filed", date(2019, 5, 28), "长沙市卫生健康委员会")
    s27 = rows[(XINGCHENG, "hunan:S27")]
    assert (s27.filed_on, s27.authority, s27.city) == (date(2019, 6, 10), "长沙市卫生健康委员会", "长沙市")
    grandfathered = rows[(XIANGJIANG, "national:G10")]
    assert grandfathered.filed_on == date(2019, 1, 30)


def test_a_stopped_use_stays_on_the_list_as_stopped(views: Views) -> None:
    """MTM-2018#25(2), #40: 湘江's S19 stopped on 2021-07-02 after its technical lead left."""

    def status(day: date) -> str:
        return {(f.institution, f.technology): f.status for f in views.filings("hunan", as_of=day)}[
            (XIANGJIANG, "hunan:S19")
        ]

    assert status(date(2021, 7, 1)) == "filed"
    assert status(date(2021, 7, 2)) == "stopped"


def test_training_bases_and_trainees_are_public(views: Views) -> None:
    """MTM-2018#30 (training bases), #33 (certified trainees), by name, never licence number."""
    bases = {(b.institution, b.technology): b for b in views.training_bases("hunan", as_of=date(2021, 1, 1))}
    assert bases[(XIANGJIANG, "national:G10")].enrolment_notice == date(2019, 9, 27)
    trainees = views.trainees("hunan", as_of=date(2021, 1, 1))
    assert [(t.physician_name, t.technology, t.certified_on) for t in trainees] == [
        ("易小兵", "national:G10", date(2020, 7, 17))
    ]


def test_institution_disclosure_shows_grades_and_case_counts(views: Views) -> None:
    """院务公开 (MTM-2018#24): surgical grades granted, and restricted-technology cases."""
    grades = {p.physician_name: p.level for p in views.privileges(XIANGJIANG, as_of=date(2019, 6, 1))}
    assert grades["陈思远"] == 4 and grades["欧阳敏"] == 2
    after = {p.physician_name: (p.level, p.status) for p in views.privileges(XIANGJIANG, as_of=date(2019, 9, 1))}
    assert after["欧阳敏"] == (2, "suspended")
    counts = {c.technology: c.cases for c in views.case_counts(institution=XIANGJIANG, as_of=date(2026, 11, 1))}
    assert counts["hunan:S14"] == 2
    # national:G05 was delisted in 2022: its cases are no longer restricted-technology cases.
    assert "national:G05" not in counts


def test_a_retracted_case_is_not_counted(views: Views) -> None:
    """HN-2019-0032 retracts the duplicate case HN-2019-0031 (星城, S27)."""
    counts = {c.technology: c.cases for c in views.case_counts(institution=XINGCHENG, as_of=date(2026, 1, 1))}
    assert counts["hunan:S27"] == 2
    trail = views.trail(institution=XINGCHENG, findings=False)
    assert {"HN-2019-0031", "HN-2019-0032"} <= {e.decision_id for e in trail.entries}


def test_a_correction_changes_views_but_the_trail_keeps_both(views: Views) -> None:
    """HN-2019-0024 corrects HN-2019-0021's technical lead: the trail shows both decisions."""
    ids = [e.decision_id for e in views.trail(institution=XIANGJIANG, technology="hunan:S14", findings=False).entries]
    assert ids.index("HN-2019-0021") < ids.index("HN-2019-0024")


def test_a_late_recorded_decision_changes_the_past_but_not_what_was_known_before(views: Views) -> None:
    """HN-2019-0044, an inspection of 2019 recorded last: ``--as-of`` 2019 shows it now, but not
    ``--known-at`` a position before it was recorded (two time axes)."""
    late = views.app.decision("HN-2019-0044")
    now = [e.decision_id for e in views.trail(institution=LIANCHENG, as_of=date(2019, 12, 31), findings=False).entries]
    then = [
        e.decision_id
        for e in views.trail(
            institution=LIANCHENG, as_of=date(2019, 12, 31), known_at=late.position - 1, findings=False
        ).entries
    ]
    assert "HN-2019-0044" in now
    assert "HN-2019-0044" not in then
    assert [i for i in now if i != "HN-2019-0044"] == then


def test_known_at_takes_a_timestamp(views: Views) -> None:
    """A record time resolves to the last position recorded by then."""
    last = views.app.decision("HN-2019-0044")
    assert views.position_at(last.recorded_at.isoformat()) == views.app.position()
    assert views.position_at("2000-01-01T00:00:00+00:00") == 0


def test_a_grade_ends_with_the_registration(views: Views) -> None:
    """谭建华 left 湘江 on 2021-06-30 (HN-2021-0002): his grade is no longer shown there."""

    def names(day: date) -> set[str]:
        return {p.physician_name for p in views.privileges(XIANGJIANG, as_of=day)}

    assert "谭建华" in names(date(2021, 6, 29))
    assert "谭建华" not in names(date(2021, 6, 30))
