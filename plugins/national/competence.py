"""Competence on the read side: real decisions by a body that was not the one to make them.

Core refuses what cannot be a real decision (``ledger.competence.refusal``); what is real but
irregular is recorded, and this rule flags it, citing the article that says who decides. It asks
the same registry of bodies and competences the import asks (``ledger.competence``; the one of the
plugin manager that built the views, ``Facts.bodies``), so the
table in docs/decisions.md ("Who may decide what") is judged in one place:

* a filing completed or rejected by an authority other than the one that licensed the institution
  (or one above it): MTM-2018#11, or the province's own article (HN-2018#二(二), CQ-2017#二(二));
* a correction order, fine, suspension or stop by a body without jurisdiction over the
  institution (MTM-2018#35, #41);
* a suspension or stop lifted (``use.resumed``) by someone other than the body that ordered it, or
  one above it — a hospital lifting its city's suspension (MTM-2018#41).

A ``by`` the plugins do not declare is not judged: the ledger cannot tell who it is.
"""

from __future__ import annotations

from collections.abc import Iterator

from ledger import Registry, normal, plugin_manager, registry
from projections import Facts, Finding, Resolved, Rule, Severity

_REGULATED = ("correction.ordered", "penalty.imposed", "use.suspended", "use.stopped")
_FILING = ("filing.completed", "filing.rejected")


def check_competence(facts: Facts) -> Iterator[Finding]:
    """MTM-2018#35 (and MTM-2018#11, MTM-2018#41, a province's own filing article): who decided
    each decision, judged against the bodies and competences the plugins declare."""
    if not facts.scope.startswith("institution:"):
        return
    bodies = facts.bodies or registry(plugin_manager())  # the views' plugins, else the process's
    licence = facts.scope.removeprefix("institution:")
    registration = facts.institution
    licensed_by = registration.record.fields.get("licensing_authority") if registration is not None else None
    for d in facts.of_kind(*_FILING, *_REGULATED):
        found = _judge(bodies, facts, d, licence, licensed_by)
        if found is not None:
            yield found
    for use in facts.by_use.values():
        yield from _resumptions(bodies, facts, use, licence)


def _judge(bodies: Registry, facts: Facts, d: Resolved, licence: str, licensed_by: str | None) -> Finding | None:
    r = d.record
    by = r.by
    if r.kind in _FILING:
        entry = bodies.competence(r.kind, facts.jurisdiction)
        if entry is None or licensed_by is None or bodies.body(by) is None or bodies.body(licensed_by) is None:
            return None
        if bodies.same_or_above(by, licensed_by):
            return None
        return _finding(
            d,
            entry.article,
            "irregular",
            f"{r.kind} by {by!r}, not the authority that licensed the institution ({licensed_by!r}) nor one "
            f"above it: a filing is made with, and completed by, the licensing authority ({entry.article})",
        )
    if normal(by) == normal(licence):
        return None  # an institution suspending or stopping its own use (MTM-2018#25)
    if bodies.regulates(by, facts.jurisdiction, licensed_by) is not False:
        return None
    return _finding(
        d,
        "MTM-2018#35, #41",
        "serious",
        f"{r.kind} by {by!r}, which has no jurisdiction over this institution: orders, fines, suspensions "
        "and stops are made by the health authority of the institution's place or above it (MTM-2018#35, #41)",
    )


def _resumptions(bodies: Registry, facts: Facts, use: list[Resolved], licence: str) -> Iterator[Finding]:
    """A resumption lifts the suspension or stop in force: by the body that ordered it, or above."""
    order: Resolved | None = None
    for d in use:
        kind = d.record.kind
        if kind in ("use.suspended", "use.stopped"):
            order = d
        elif kind == "use.resumed":
            if order is not None:
                found = _lifted(bodies, d, order, licence)
                if found is not None:
                    yield found
            order = None


def _lifted(bodies: Registry, d: Resolved, order: Resolved, licence: str) -> Finding | None:
    by, orderer = d.record.by, order.record.by
    if normal(by) == normal(orderer) or bodies.same_or_above(by, orderer):
        return None
    if normal(orderer) == normal(licence) or bodies.body(orderer) is None:
        return None  # the institution's own suspension, or one by a body the ledger cannot judge
    if normal(by) != normal(licence) and bodies.body(by) is None:
        return None
    return _finding(
        d,
        "MTM-2018#41",
        "serious",
        f"use resumed by {by!r}, but {order.record.kind} {order.record.id} was ordered by {orderer!r}: only "
        "the body that ordered it, or one above it, lifts it (MTM-2018#41)",
        order,
    )


def _finding(d: Resolved, article: str, severity: Severity, message: str, *others: Resolved) -> Finding:
    return Finding.of(
        COMPETENCE, d, message, severity=severity, decisions=(*others, d), article=article, physician=None
    )


COMPETENCE = Rule(
    "national.competence", "MTM-2018#35", "A decision by a body that was not the one to make it", check_competence
)

RULES: tuple[Rule, ...] = (COMPETENCE,)
