"""HN-2018 附件2, 湖南省限制类医疗技术临床应用备案表: the filing form carried as ``hunan.form``.

A Hunan filing (``filing.submitted``) may carry the annex-2 form as the object ``hunan.form``, keyed
by the form's own labels. What this module does with it, and why the line is drawn where it is:

* **refused at import** (``ledger_validate_decision``) — only what cannot be the form at all: not a
  JSON object, a label whose value has the wrong shape (text that is not text, a 是/否 box that is
  neither, 技术负责人 that is not a list of people each with a 姓名), the form on another kind of
  decision, or an unknown ``hunan.*`` field (a misspelt plugin field would otherwise be silently
  ignored). A ledger is a record of what happened, so an *incomplete* form is recorded;
* **shown as a finding** (``rules``) — a form missing labels the annex requires, or one that says
  something else than the decision it belongs to (another technology code, institution or lead).

``hunan.list_reported`` (on ``trainee.certified``) is the day the training base reported the
trainees who passed to the province (HN-2018#五); with it, the 5-working-day rule can be judged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from ledger import DecisionRecord

FORM = "hunan.form"
LIST_REPORTED = "hunan.list_reported"
KNOWN_FIELDS = (FORM, LIST_REPORTED)

TEXT_LABELS = (
    "医疗机构名称",
    "医疗机构类别",
    "医疗机构级别",
    "医疗机构主要负责人",
    "联系手机",
    "技术名称",
    "技术编号",
    "相关培训情况",
    "医疗机构意见",
)
YES_NO_LABELS = (
    "是否首次开展",
    "是否对照相关医疗技术管理规范进行自我评估",
    "是否符合相关医疗技术管理规范要求",
)
LEAD = "技术负责人"
LEAD_LABELS = ("姓名", "职称", "负责科室")
FILED_AT = "备案时间"
"""Filled in by the filing authority (此栏由备案机关填写): optional on the institution's form."""

REQUIRED_LABELS = (
    "医疗机构名称",
    "医疗机构类别",
    "医疗机构级别",
    "医疗机构主要负责人",
    "联系手机",
    "技术名称",
    "技术编号",
    "是否首次开展",
    LEAD,
    "相关培训情况",
    "是否对照相关医疗技术管理规范进行自我评估",
    "是否符合相关医疗技术管理规范要求",
    "医疗机构意见",
)
"""Every label of annex 2 the institution fills in, in the form's order."""

_DATE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")


def validate(decision: DecisionRecord) -> Iterator[tuple[str, str]]:
    """``(field, message)`` for each Hunan field that cannot be what it claims (see the module docstring)."""
    for name in sorted(decision.extensions):
        if name.startswith("hunan.") and name not in KNOWN_FIELDS:
            yield name, f"unknown Hunan field; Hunan's fields are {', '.join(KNOWN_FIELDS)}"
    if FORM in decision.extensions:
        if decision.kind != "filing.submitted":
            yield FORM, f"the annex-2 filing form belongs on filing.submitted, not on {decision.kind}"
        yield from _check_form(decision.extensions[FORM])
    if LIST_REPORTED in decision.extensions:
        value = decision.extensions[LIST_REPORTED]
        if decision.kind != "trainee.certified":
            yield LIST_REPORTED, f"the day the list was reported belongs on trainee.certified, not {decision.kind}"
        elif not isinstance(value, str) or not _DATE.match(value):
            yield LIST_REPORTED, f"expected a date YYYY-MM-DD, got {value!r}"
        elif value < decision.effective.isoformat():
            yield LIST_REPORTED, f"reported on {value}, before the certification of {decision.effective}"


def _check_form(form: Any) -> Iterator[tuple[str, str]]:
    if not isinstance(form, Mapping):
        yield FORM, f"the annex-2 form is a JSON object keyed by the form's labels, got {type(form).__name__}"
        return
    for label in (*TEXT_LABELS, FILED_AT):
        if label in form and not isinstance(form[label], str):
            yield f"{FORM}.{label}", f"expected text, got {type(form[label]).__name__}"
    for label in YES_NO_LABELS:
        if label in form and form[label] not in ("是", "否"):
            yield f"{FORM}.{label}", f"expected 是 or 否, got {form[label]!r}"
    if LEAD in form:
        leads = form[LEAD]
        if not isinstance(leads, list) or not leads:
            yield f"{FORM}.{LEAD}", "expected a list of technical leads (姓名, 职称, 负责科室), one or more"
            return
        for i, lead in enumerate(leads):
            where = f"{FORM}.{LEAD}[{i}]"
            if not isinstance(lead, Mapping):
                yield where, f"expected an object with 姓名, 职称, 负责科室, got {type(lead).__name__}"
            elif not isinstance(lead.get("姓名"), str) or not lead["姓名"].strip():
                yield where, "a technical lead needs a 姓名"
            else:
                for label in LEAD_LABELS[1:]:
                    if label in lead and not isinstance(lead[label], str):
                        yield f"{where}.{label}", f"expected text, got {type(lead[label]).__name__}"


def missing_labels(form: Mapping[str, Any]) -> list[str]:
    """Labels annex 2 requires that the form leaves out or leaves blank."""
    return [label for label in REQUIRED_LABELS if label not in form or form[label] in ("", None, [])]


def lead_names(form: Mapping[str, Any]) -> list[str]:
    leads = form.get(LEAD)
    if not isinstance(leads, list):
        return []
    return [str(lead["姓名"]).strip() for lead in leads if isinstance(lead, Mapping) and lead.get("姓名")]
