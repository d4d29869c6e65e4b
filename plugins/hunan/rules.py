"""HN-2018 (湘卫医发〔2018〕11号): what Hunan adds to MTM-2018, as rules and deadlines.

Hunan's deadlines (``DEADLINES``) override the national ones of the same name for Hunan's
institutions, so the national rules count Hunan's filings on Hunan's terms and cite HN-2018 beside
MTM-2018: ``filing`` 15 working days after the first case (HN-2018#二(二)); ``grandfather``
2019-01-31 for uses under way before the notice (HN-2018#六(一), one day earlier than MTM-2018#49's
2019-02-01); ``trainee-list`` 5 working days (HN-2018#五).

The rules here judge only what Hunan itself asks:

* ``hunan.filing-authority`` — HN-2018#二(二): the filing goes to "核发《医疗机构执业许可证》的卫生行政部门"
  (the authority that issued the institution's licence), which completes it and annotates the licence;
* ``hunan.form-incomplete`` / ``hunan.form-mismatch`` — HN-2018#二(二)1, 附件2: the filing form is
  complete and says what the filing says (technology code, institution, technical lead);
* ``hunan.lead-left`` — HN-2018 附件2 注2: when the technical lead changes, a new form is filed; a
  case after the lead has left the institution, with no new form since, shows it was not;
* ``hunan.trainee-list`` — HN-2018#五: a training base reports who passed within 5 working days
  (judged where the certification records ``hunan.list_reported``).

They apply to Hunan's institutions only (``jurisdictions={"hunan"}``), from the day MTM-2018 took
effect (2018-11-01) — HN-2018 implements it, and its grandfather rule reaches back to that day.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from datetime import date, timedelta

from ledger import CalendarError
from plugins.hunan import form as annex2
from projections import Deadline, Facts, Finding, Resolved, Rule, Use

HUNAN = "hunan"
MTM2018_START = date(2018, 11, 1)
HN2018_ISSUED = date(2018, 11, 19)
HN_GRANDFATHER = date(2019, 1, 31)
"""HN-2018#六(一): "要在2019年1月31日前向核发《医疗机构执业许可证》的卫生行政部门备案"."""

DEADLINES: tuple[Deadline, ...] = (
    Deadline("filing", 15, "HN-2018#二(二)", HUNAN, valid_from=HN2018_ISSUED),
    Deadline("trainee-list", 5, "HN-2018#五", HUNAN, valid_from=HN2018_ISSUED),
    Deadline(
        "grandfather", 0, "HN-2018#六(一)", HUNAN, valid_from=MTM2018_START, extra={"by": HN_GRANDFATHER.isoformat()}
    ),
)


def _institution_on(facts: Facts, day: date) -> Resolved | None:
    """The institution's registration in force on ``day`` (the latest one by then)."""
    current = None
    for d in facts.of_kind("institution.registered"):
        if d.record.effective <= day:
            current = d
    return current


def _physician_name(facts: Facts, physician: str, institution: str, day: date) -> str | None:
    name = None
    for d in facts.of_kind("physician.registered"):
        f = d.record.fields
        if f["physician"] == physician and f["institution"] == institution and d.record.effective <= day:
            name = f["name"]
    return name


class _Registrations:
    """Registration decisions per (physician, institution), built once: which one was the last
    change by a day is a bisect (``Facts.registered`` answers whether it left the physician registered)."""

    def __init__(self, facts: Facts) -> None:
        self._timelines: dict[tuple[str, str], list[Resolved]] = {}
        self._days: dict[tuple[str, str], list[date]] = {}
        for d in facts.of_kind("physician.registered", "physician.deregistered"):
            key = (d.record.fields["physician"], d.record.fields["institution"])
            self._timelines.setdefault(key, []).append(d)
            self._days.setdefault(key, []).append(d.record.effective)

    def last_change(self, physician: str, institution: str, day: date) -> Resolved | None:
        timeline = self._timelines.get((physician, institution), [])
        i = bisect_right(self._days.get((physician, institution), []), day)
        return timeline[i - 1] if i else None


def _code(technology: str) -> str:
    return technology.partition(":")[2]


def check_filing_authority(facts: Facts) -> Iterator[Finding]:
    """HN-2018#二(二) (MTM-2018#11): the filing is completed by the authority that issued the
    institution's 《医疗机构执业许可证》, as registered on the filing's day."""
    for d in facts.of_kind("filing.completed"):
        r = d.record
        if r.effective < MTM2018_START:
            continue
        inst = _institution_on(facts, r.effective)
        if inst is None:
            continue
        authority = inst.record.fields["licensing_authority"]
        if r.by.strip() == authority.strip():
            continue
        yield Finding.of(
            FILING_AUTHORITY,
            d,
            f"{r.fields['technology']} filed with {r.by}, not with the licensing authority {authority}",
            severity="irregular",
            decisions=(d, inst),
        )


def _forms(facts: Facts) -> Iterator[tuple[Resolved, dict[str, object]]]:
    for d in facts.of_kind("filing.submitted"):
        form = d.record.extensions.get(annex2.FORM)
        if d.record.effective >= MTM2018_START and isinstance(form, dict):
            yield d, form


def check_form_incomplete(facts: Facts) -> Iterator[Finding]:
    """HN-2018#二(二)1, 附件2: the annex-2 filing form fills in every label the institution answers."""
    for d, form in _forms(facts):
        missing = annex2.missing_labels(form)
        if not missing:
            continue
        r = d.record
        yield Finding.of(
            FORM_INCOMPLETE,
            d,
            f"the filing form (附件2) of {r.fields['technology']} leaves out {', '.join(missing)}",
            severity="irregular",
        )


def check_form_mismatch(facts: Facts) -> Iterator[Finding]:
    """HN-2018 附件2: the form names the technology (技术编号), the institution (医疗机构名称) and the
    technical lead (技术负责人) of the filing it belongs to. The lead's name is compared only when
    the lead is registered at the institution (otherwise ``national.technical-lead`` speaks)."""
    for d, form in _forms(facts):
        r = d.record
        problems = []
        code = form.get("技术编号")
        if isinstance(code, str) and code.strip() and code.strip() != _code(r.fields["technology"]):
            problems.append(f"技术编号 {code} for {r.fields['technology']}")
        inst = _institution_on(facts, r.effective)
        name = form.get("医疗机构名称")
        if inst is not None and isinstance(name, str) and name.strip() and name.strip() != inst.record.fields["name"]:
            problems.append(f"医疗机构名称 {name} for {inst.record.fields['name']}")
        lead = _physician_name(facts, r.fields["technical_lead"], r.fields["institution"], r.effective)
        names = annex2.lead_names(form)
        if lead is not None and names and lead not in names:
            named = f"{lead} ({r.fields['technical_lead']})"
            problems.append(f"技术负责人 {', '.join(names)} while the filing names {named}")
        if not problems:
            continue
        yield Finding.of(
            FORM_MISMATCH,
            d,
            "the filing form (附件2) does not match its filing: " + "; ".join(problems),
            severity="irregular",
            physician=r.fields["technical_lead"],
        )


def check_lead_left(facts: Facts) -> Iterator[Finding]:
    """HN-2018 附件2 注2: "当医疗机构主要负责人或该技术负责人发生变化时，应重新向备案机关提交本表".

    A case of a filed technology after the technical lead of its latest filing was deregistered
    from the institution, with no new filing form submitted since. (A lead never registered here is
    ``national.technical-lead``'s finding, on the filing's day.)
    """
    registrations = _Registrations(facts)
    for (institution, technology), use in sorted(facts.uses.items()):
        filings = [d for d in use.others if d.record.kind == "filing.submitted"]
        for k, latest in enumerate(filings):
            lead = latest.record.fields["technical_lead"]
            if not facts.registered(lead, institution, latest.record.effective):
                continue
            # The first case under this filing (before the next form) on a day the lead had left.
            # The lead's registration changes on a few days: the cases up to the next are skipped.
            cases = latest_cases(use, latest, filings[k + 1] if k + 1 < len(filings) else None)
            i = 0
            while i < len(cases):
                now = facts.standing(lead, institution, cases[i].record.effective)
                if now.registered:
                    i = bisect_left(cases, now.until, i + 1, key=_day)
                    continue
                d = cases[i]
                r = d.record
                left = registrations.last_change(lead, institution, r.effective)
                yield Finding.of(
                    LEAD_LEFT,
                    d,
                    f"case of {technology} on {r.effective}: technical lead {lead} of filing "
                    f"{latest.record.id} has left the institution and no new filing form was submitted",
                    severity="irregular",
                    decisions=(d, latest, left),
                    physician=lead,
                )
                break


def latest_cases(use: Use, filing: Resolved, following: Resolved | None) -> list[Resolved]:
    """The cases of ``use`` from 2018-11-01 after ``filing`` and before the ``following`` filing."""
    cases = use.cases_after(filing, following)
    if cases and cases[0].record.effective < MTM2018_START:
        cases = cases[bisect_left(cases, MTM2018_START, key=_day) :]
    return cases


def _day(d: Resolved) -> date:
    return d.record.effective


def check_trainee_list(facts: Facts) -> Iterator[Finding]:
    """HN-2018#五: "在培训和考核结束后的5个工作日内将考核合格人员名单报我委". Judged for certifications
    that record the day the list was reported (``hunan.list_reported``); a late report arises the
    day after the deadline."""
    for d in facts.of_kind("trainee.certified"):
        r = d.record
        reported = r.extensions.get(annex2.LIST_REPORTED)
        deadline = facts.deadline("trainee-list", r.effective)
        if not isinstance(reported, str) or deadline is None:
            continue
        day = date.fromisoformat(reported)
        calendar = facts.calendar()
        try:
            elapsed = calendar.workdays_between(r.effective, day)
            if elapsed <= deadline.working_days:
                continue
            due = calendar.add_workdays(r.effective, deadline.working_days)
        except CalendarError:
            continue
        yield Finding.of(
            TRAINEE_LIST,
            d,
            f"passed trainee {r.fields['physician']} certified on {r.effective}, reported to the province on "
            f"{day}: {elapsed} working days, due by {due}",
            severity="irregular",
            effective=due + timedelta(days=1),
        )


ONLY_HUNAN = frozenset({HUNAN})

FILING_AUTHORITY = Rule(
    "hunan.filing-authority",
    "HN-2018#二(二)",
    "Filed with an authority other than the licensing one",
    check_filing_authority,
    ONLY_HUNAN,
)
FORM_INCOMPLETE = Rule(
    "hunan.form-incomplete", "HN-2018#二(二)1", "Filing form (附件2) incomplete", check_form_incomplete, ONLY_HUNAN
)
FORM_MISMATCH = Rule(
    "hunan.form-mismatch",
    "HN-2018#二(二)1",
    "Filing form (附件2) does not match the filing",
    check_form_mismatch,
    ONLY_HUNAN,
)
LEAD_LEFT = Rule(
    "hunan.lead-left", "HN-2018 附件2 注2", "Technical lead left, no new filing form", check_lead_left, ONLY_HUNAN
)
TRAINEE_LIST = Rule(
    "hunan.trainee-list",
    "HN-2018#五",
    "Passed-trainee list reported later than 5 working days",
    check_trainee_list,
    ONLY_HUNAN,
)

RULES: tuple[Rule, ...] = (FILING_AUTHORITY, FORM_INCOMPLETE, FORM_MISMATCH, LEAD_LEFT, TRAINEE_LIST)
