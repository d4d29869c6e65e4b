"""Conditions an institution meets before it uses a restricted technology, besides ethics (MTM-2018#13).

* ``national.management-review`` — MTM-2018#21: "属本机构首次应用的医疗技术，通过论证的方可开展" (and
  #11(2): the management body's 论证 is part of the filing). A case of a restricted technology on a
  day when the institution's technology-management committee (``review.concluded``,
  ``committee=management``) had not approved it — none yet, or the latest one rejected.
* ``national.self-assessment`` — MTM-2018#11(1), HN-2018#二(二) ("进行自我评估，符合条件的可以开展临床应用"):
  a case of a restricted technology on a day when the institution's latest self-assessment
  (``self_assessment.concluded``) found it does not meet the technology's management norm.

Judged from 2018-11-01, on each case's own day, for technologies restricted that day (as
``national.ethics`` is). The reviews cut a use's days into spans sharing the same latest review: only
the cases of spans without an approval are looked at.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from plugins.national.common import MTM2018_START
from projections import Facts, Finding, Resolved, Rule, Use


def _unapproved_cases(
    facts: Facts, technology: str, use: Use, reviews: Sequence[Resolved], approved: str
) -> Iterator[tuple[Resolved, Resolved | None, Resolved | None]]:
    """Each case of ``use`` from 2018-11-01, of the technology while restricted, on a day when the latest
    of ``reviews`` (in valid-time order) was not ``approved``; with that review and the next approval."""
    days = [d.record.effective for d in reviews]
    for i in range(len(reviews) + 1):
        latest = reviews[i - 1] if i else None
        if latest is not None and latest.record.fields["outcome"] == approved:
            continue
        since = max(days[i - 1], MTM2018_START) if i else MTM2018_START
        cases = use.cases_on(since, days[i] if i < len(days) else None)
        if not cases:
            continue
        later = next((d for d in reviews[i:] if d.record.fields["outcome"] == approved), None)
        for case in cases:
            if facts.tech_class(technology, case.record.effective) == "restricted":
                yield case, latest, later


def check_management_review(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#21 (and #11(2)): no restricted case before the management committee approved the technology."""
    for (_, technology), use in sorted(facts.uses.items()):
        if not use.cases or not facts.may_be(technology, "restricted"):
            continue
        reviews = [
            d
            for d in use.others
            if d.record.kind == "review.concluded" and d.record.fields["committee"] == "management"
        ]
        for case, latest, later in _unapproved_cases(facts, technology, use, reviews, "approved"):
            r = case.record
            state = "rejected it" if latest is not None else "not approved it"
            tail = f" (approved only on {later.record.effective})" if later is not None else ""
            yield Finding.of(
                MANAGEMENT_REVIEW,
                case,
                f"case of restricted technology {technology} on {r.effective}: the technology-management "
                f"committee (医疗技术临床应用管理专门组织) had {state}{tail}; MTM-2018#21: 通过论证的方可开展",
                severity="serious",
                decisions=(case, latest, later),
            )


def check_self_assessment(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#11(1), HN-2018#二(二): no restricted case while the latest self-assessment says the
    institution does not meet the technology's management norm."""
    assessments: dict[tuple[str, str], list[Resolved]] = {}
    for d in facts.of_kind("self_assessment.concluded"):
        f = d.record.fields
        assessments.setdefault((f["institution"], f["technology"]), []).append(d)
    for (institution, technology), found in sorted(assessments.items()):
        use = facts.uses.get((institution, technology))
        if use is None or not use.cases or not facts.may_be(technology, "restricted"):
            continue
        # Only a recorded "does-not-meet" blocks: the span before the first assessment is not judged here.
        for case, latest, later in _unapproved_cases(facts, technology, use, found, "meets"):
            if latest is None:
                continue
            r = case.record
            tail = f" (found to meet it only on {later.record.effective})" if later is not None else ""
            yield Finding.of(
                SELF_ASSESSMENT,
                case,
                f"case of restricted technology {technology} on {r.effective}: the self-assessment "
                f"of {latest.record.effective} found it does not meet the management norm{tail} (符合条件的可以开展)",
                severity="serious",
                decisions=(case, latest, later),
            )


MANAGEMENT_REVIEW = Rule(
    "national.management-review",
    "MTM-2018#21",
    "Case before the management committee approved",
    check_management_review,
)
SELF_ASSESSMENT = Rule(
    "national.self-assessment",
    "MTM-2018#11(1)",
    "Case while the self-assessment found the norm unmet",
    check_self_assessment,
)

RULES: tuple[Rule, ...] = (MANAGEMENT_REVIEW, SELF_ASSESSMENT)
"""The conditions for use of MTM-2018#11 and #21, contributed by ``ledger_rules``."""
