"""``Finding.of`` (the one way a rule makes a finding) makes exactly what ``Finding(...)`` makes.

It assembles the finding without ``__init__`` (``ledger.frozen``), so these check the object is
the same — equal, same hash, same ``vars``, same order and repr — and that each default is what
``docs/plugins.md`` promises: the rule's id and article, the decision's day and subject fields, the
decision alone as what shows it.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ledger import parse_line
from projections import Finding, Resolved, Rule
from projections.findings import OF_DECISION

CASE = {
    "id": "c1",
    "kind": "case.performed",
    "effective": "2019-05-06",
    "by": "H1",
    "institution": "H1",
    "technology": "hunan:S14",
    "physician": "D1",
    "case": "ZY-1",
}
FILING = {
    "id": "f1",
    "kind": "filing.submitted",
    "effective": "2019-05-20",
    "by": "H1",
    "institution": "H1",
    "technology": "hunan:S14",
    "technical_lead": "D1",
    "materials": ["备案表"],
}
PENALTY = {
    "id": "p1",
    "kind": "penalty.imposed",
    "effective": "2020-11-16",
    "by": "长沙市卫生健康委员会",
    "institution": "H1",
    "amount_yuan": 1000,
    "reason": "…",
}
DECISIONS = [Resolved(i, parse_line(json.dumps(d, ensure_ascii=False))) for i, d in enumerate((CASE, FILING, PENALTY))]
RULE = Rule("test.rule", "MTM-2018#11", "a rule of the test", lambda facts: ())

subjects = st.one_of(st.just(OF_DECISION), st.none(), st.text(max_size=5))


def expected(about: Resolved, options: dict[str, Any]) -> Finding:
    """What ``Finding(...)`` makes from the documented defaults and ``options``."""
    fields = about.record.fields
    shown = options.get("decisions")
    ids: list[str] = []
    for d in (about,) if shown is None else shown:
        if d is not None and d.record.id not in ids:
            ids.append(d.record.id)
    subject = {
        name: fields.get(name) if options.get(name, OF_DECISION) is OF_DECISION else options[name]
        for name in ("institution", "technology", "physician")
    }
    return Finding(
        effective=options.get("effective") or about.record.effective,
        rule=RULE.id,
        article=options.get("article") or RULE.article,
        severity="serious",
        message="m",
        decisions=tuple(ids),
        **subject,
    )


@given(
    about=st.sampled_from(DECISIONS),
    effective=st.none() | st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 1, 1)),
    article=st.none() | st.sampled_from(("MTM-2018#11, HN-2018#二(二)", "CQ-2017#二(二)")),
    decisions=st.none() | st.lists(st.none() | st.sampled_from(DECISIONS), max_size=4),
    institution=subjects,
    technology=subjects,
    physician=subjects,
)
def test_finding_of_makes_what_init_makes(about: Resolved, **options: Any) -> None:
    given_options = {
        k: v for k, v in options.items() if v is not None or k in ("institution", "technology", "physician")
    }
    made = Finding.of(RULE, about, "m", severity="serious", **given_options)
    want = expected(about, given_options)
    assert made == want
    assert hash(made) == hash(want)
    assert vars(made) == vars(want)
    assert repr(made) == repr(want)
    assert not made < want and not want < made


def test_the_defaults_are_the_decisions() -> None:
    """A case names its physician; a filing's technical lead is not its physician; a fine names no technology."""
    case, filing, penalty = (Finding.of(RULE, d, "m", severity="irregular") for d in DECISIONS)
    assert (case.effective, case.institution, case.technology, case.physician) == (
        date(2019, 5, 6),
        "H1",
        "hunan:S14",
        "D1",
    )
    assert (filing.physician, filing.decisions) == (None, ("f1",))
    assert (penalty.technology, penalty.rule, penalty.article) == (None, "test.rule", "MTM-2018#11")
