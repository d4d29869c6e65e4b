"""The language tables speak: Chinese first, English when asked (``--lang en``, ``LEDGER_LANG``, or
a locale in ``LC_ALL``/``LC_MESSAGES``/``LANG`` that is English).

Translations are a gettext catalogue (``locale/zh_CN/LC_MESSAGES/ledger.po``, compiled to the
``.mo`` shipped beside it; ``tests/projections/test_i18n.py`` keeps them in sync). English is the
catalogue's source language, so English needs none. Only what people read is translated: table
headings, section titles, statuses, classes, severities and findings' messages. JSON, JSON Lines
and CSV keep the stable keys and values programs read.

Findings' messages come from the plugins' rules as English text with the facts filled in. They
are translated here, by rule id: each rule's known message shapes (``FINDING_MESSAGES``, the
catalogue's msgids, with ``{field}`` for what varies) are matched and their Chinese filled with
the same fields. A message of no known shape keeps its English, after the rule's Chinese title.
"""

from __future__ import annotations

import gettext
import os
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path

DOMAIN = "ledger"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("zh", "en")
LANG_ENV = "LEDGER_LANG"

FINDING_MESSAGES: dict[str, tuple[str, ...]] = {
    "national.ethics": (
        "case of restricted technology {technology} on {day}: the ethics committee had not approved it "
        "(approved only on {approved})",
        "case of restricted technology {technology} on {day}: the ethics committee had {state}",
    ),
    "national.late-filing": (
        "{technology} filed on {filed}, later than {days} working days after the first case on {first}, i.e. {due}",
        "{technology} filed on {filed}, later than {since}",
    ),
    "national.filing-overdue": (
        "{technology}: first case on {first}, filing due by {due}, none submitted as of {day}",
    ),
    "national.technical-lead": (
        "the filing of {technology} names technical lead {lead}, who is not registered at the institution on {day}",
    ),
    "national.privilege": (
        "case {case} of {technology} on {day}: a grade-{grade} operation by a physician granted level {level}; "
        "{technology2} is not among the granted procedures",
        "case {case} of {technology} on {day}: a grade-{grade} operation by a physician granted level {level}",
        "case {case} of {technology} on {day}: {technology2} is not among the granted procedures",
    ),
    "national.use-while-suspended": ("case of {technology} on {day} while its use was {state} (since {since})",),
    "national.training-base": (
        "training base for {technology} filed on {filed}, {elapsed} working days after its enrolment notice of "
        "{notice}; due by {due} ({days} working days)",
    ),
    "national.completion-without-submission": (
        "filing of {technology} completed on {day} by {by} with no live submission (none submitted, or its "
        "submission retracted): it does not count as filed",
    ),
    "national.prohibited-2009": ("case of {technology}, a prohibited technology, on {day} (MTM-2009#13, #58)",),
    "national.unfiled-use": ("case of restricted technology {technology} on {day} without a filing: {why}",),
    "national.correction-ignored": (
        "{technology} used after the correction deadline {deadline} of {order} ({ordered}, by {by}): cases from "
        "{first} to {last}, and no suspension or stop since the order "
        "({article}: 逾期不改的，暂停或者停止相关医疗技术临床应用)",
    ),
    "national.authority-late": (
        "the filing of {technology} submitted on {submitted} was {what} by {by} on {day}, {elapsed} working "
        "days later; the authority answers within {days} working days of complete materials, i.e. by {due}",
    ),
    "national.submission-pending": (
        "the filing of {technology} submitted on {submitted} has had no completion or rejection as of {day}; "
        "the authority answers within {days} working days, i.e. by {due}",
    ),
    "hunan.filing-authority": ("{technology} filed with {by}, not with the licensing authority {authority}",),
    "hunan.form-incomplete": ("the filing form (附件2) of {technology} leaves out {missing}",),
    "hunan.lead-left": (
        "case of {technology} on {day}: technical lead {lead} of filing {filing} has left the institution "
        "and no new filing form was submitted",
    ),
    "hunan.trainee-list": (
        "passed trainee {physician} certified on {certified}, reported to the province on {day}: {elapsed} "
        "working days, due by {due}",
    ),
    "chongqing.public-notice": (
        "filing of {technology}: no public notice (公示) recorded",
        "filing of {technology}: noticed {first} to {last}: {days} working days, not {required}",
        "filing of {technology}: the notice starts on {first}, before the filing was completed on {completed}",
        "filing of {technology}: the notice's length cannot be counted: {why}",
    ),
    "chongqing.notice-overrun": (
        "filing of {technology} noticed {start} to {end}: {days} working days, longer than the {limit} of "
        "CQ-2017 (the notice should have ended on {due})",
    ),
    "chongqing.review-after-notice": (
        "restricted filing of {technology}: the experts' formal review is dated {reviewed}, after its public "
        "notice began on {begun} (审核通过后公示)",
    ),
    "chongqing.expert-review": ("restricted filing of {technology} completed without a recorded expert formal review",),
    "chongqing.use-before-filing": (
        "case of {technology} on {day} before its filing was done (completed and publicly noticed for 5 working days)",
    ),
    "chongqing.filing-authority": ("{technology} ({tech_class}) filed with {by}; CQ-2017 files it with {what}",),
}
"""By rule id, the English shapes of its findings' messages (most specific first): the catalogue's
msgids under the rule id as msgctxt."""

_FIELD = re.compile(r"\\\{(\w+)\\\}")

_language: str | None = None


def language_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``LEDGER_LANG``, else the locale (``LC_ALL``, ``LC_MESSAGES``, ``LANG``, the first set):
    English if it says English, Chinese otherwise (``C``, ``POSIX`` and unset included)."""
    env = os.environ if environ is None else environ
    for name in (LANG_ENV, "LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "").strip().lower()
        if value:
            return "en" if value.startswith("en") else "zh"
    return "zh"


def set_language(language: str | None) -> None:
    """What tables speak from now on (``zh`` or ``en``); None: as the environment says."""
    if language is not None and language not in LANGUAGES:
        msg = f"no language {language!r}: one of {', '.join(LANGUAGES)}"
        raise ValueError(msg)
    global _language  # noqa: PLW0603 — one process, one reader: the language a command was asked for
    _language = language


def language() -> str:
    """The language tables speak now."""
    return _language or language_from_env()


@cache
def _catalogue(lang: str) -> gettext.NullTranslations:
    if lang == "en":
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=["zh_CN"])


def translate(context: str, text: str) -> str:
    """``text`` in the current language, looked up under ``context`` (gettext's msgctxt)."""
    return _catalogue(language()).pgettext(context, text)


def message(text: str) -> str:
    """A sentence of the command line (no context) in the current language."""
    return _catalogue(language()).gettext(text)


def heading(column: str, table: str | None = None) -> str:
    """A table's column heading: the table's own (msgctxt ``column:<table>``) where a column
    means something else there (an institution's ``level`` is its grade, 医院等级; a privilege's
    is a surgery's, 手术级别), else the one all tables share."""
    if table is not None:
        own = translate(f"column:{table}", column)
        if own != column:
            return own
    return translate("column", column)


def section(name: str) -> str:
    """A table's title (``filings``, ``findings``)."""
    return translate("section", name)


VALUE_SHAPES = (
    "open: {days} working days left",
    "open: {days} working day left",
    "open (cannot count the days left: {why})",
    "cannot count: {why}",
)
"""Statuses with a part of their own (a count, a reason): translated by shape, like findings."""


def value(text: str) -> str:
    """A status, class or severity as people read it."""
    said = translate("value", text)
    if said != text or language() == "en":
        return said
    for shape, pattern in _value_shapes():
        matched = pattern.match(text)
        if matched:
            return translate("value", shape).format(**matched.groupdict())
    return text


@cache
def _value_shapes() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple(
        (shape, re.compile("^" + _FIELD.sub(r"(?P<\1>.+?)", re.escape(shape)) + "$", re.S)) for shape in VALUE_SHAPES
    )


@cache
def _shapes(rule: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple(
        (shape, re.compile("^" + _FIELD.sub(r"(?P<\1>.+?)", re.escape(shape)) + "$", re.S))
        for shape in FINDING_MESSAGES.get(rule, ())
    )


def finding(rule: str, text: str) -> str:
    """A finding's message in the current language: its shape translated with its fields (a
    status among them translated too), else the rule's title before the English."""
    if language() == "en":
        return text
    for shape, pattern in _shapes(rule):
        if m := pattern.match(text):
            fields = {k: value(v) for k, v in m.groupdict().items()}
            return translate(rule, shape).format(**fields)
    title = translate("rule", rule)
    return text if title == rule else f"{title}：{text}"
