"""Chinese first: the catalogue ships compiled and in sync, the language follows --lang, LEDGER_LANG
and the locale, and findings' messages are translated by rule id."""

from __future__ import annotations

import gettext
import io

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from ledger.plugins import plugin_manager
from projections import i18n

PO = i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "ledger.po"
MO = PO.with_suffix(".mo")


def _po() -> dict[tuple[str | None, str], str]:
    with PO.open("rb") as f:
        catalog = read_po(f)
    return {(m.context, str(m.id)): str(m.string) for m in catalog if m.id}


def test_the_shipped_mo_is_the_po_compiled() -> None:
    """The .mo gettext loads is the .po compiled (``pybabel compile -d projections/locale -D ledger``)."""
    with PO.open("rb") as f:
        compiled = io.BytesIO()
        write_mo(compiled, read_po(f))
    compiled.seek(0)
    with MO.open("rb") as f:
        shipped = gettext.GNUTranslations(f)

    def messages(t: gettext.GNUTranslations) -> dict[object, object]:
        return {k: v for k, v in t._catalog.items() if k != ""}  # type: ignore[attr-defined]  # "": the header's dates

    assert messages(shipped) == messages(gettext.GNUTranslations(compiled))
    for (context, msgid), msgstr in _po().items():
        assert msgstr, (context, msgid)
        got = shipped.pgettext(context, msgid) if context else shipped.gettext(msgid)
        assert got == msgstr


def test_every_rule_has_a_chinese_title_and_every_message_shape_a_translation() -> None:
    po = _po()
    rules = {r.id for contributed in plugin_manager().hook.ledger_rules() for r in contributed or ()}
    assert rules and {rule for rule in rules if ("rule", rule) not in po} == set()
    shapes = {(rule, shape) for rule, all_shapes in i18n.FINDING_MESSAGES.items() for shape in all_shapes}
    assert shapes == {(c, m) for c, m in po if c and "." in c}
    for rule, shape in shapes:
        assert set(i18n._FIELD.findall(shape.replace("{", "\\{").replace("}", "\\}"))) == set(
            i18n._FIELD.findall(po[(rule, shape)].replace("{", "\\{").replace("}", "\\}"))
        ), (rule, shape)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "zh"),
        ({"LANG": "C.UTF-8"}, "zh"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "zh_CN.UTF-8", "LC_ALL": "en_GB.UTF-8"}, "en"),
        ({"LC_ALL": "en_US.UTF-8", "LEDGER_LANG": "zh"}, "zh"),
        ({"LANG": "fr_FR.UTF-8"}, "zh"),
    ],
)
def test_the_language_from_the_environment(env: dict[str, str], expected: str) -> None:
    assert i18n.language_from_env(env) == expected


def test_findings_translate_by_rule_with_their_facts() -> None:
    i18n.set_language("zh")
    try:
        late = (
            "hunan:S27 filed on 2019-05-24, later than 15 working days after the first case on 2019-04-24, "
            "i.e. 2019-05-16"
        )
        assert i18n.finding("national.late-filing", late) == (
            "hunan:S27 于 2019-05-24 备案，晚于首例（2019-04-24）后 15 个工作日，即 2019-05-16"
        )
        ignored = (
            "hunan:S14 used after the correction deadline 2021-04-30 of HN-2021-0007 "
            "(2021-03-31, by 长沙市卫生健康委员会): "
            "cases from 2021-05-06 to 2021-06-01, and no suspension or stop since the order "
            "(MTM-2018#45: 逾期不改的，暂停或者停止相关医疗技术临床应用)"
        )
        assert i18n.finding("national.correction-ignored", ignored) == (  # MTM-2018#45
            "hunan:S14 在 长沙市卫生健康委员会 的整改通知 HN-2021-0007（2021-03-31）所定期限 2021-04-30 之后仍在使用："
            "2021-05-06 至 2021-06-01 均有病例，且自通知以来未暂停或停止"
            "（MTM-2018#45：逾期不改的，暂停或者停止相关医疗技术临床应用）"
        )
        short = "filing of chongqing:C07: noticed 2019-03-01 to 2019-03-05: 3 working days, not 5"
        assert i18n.finding("chongqing.public-notice", short) == (  # CQ-2017#二(二)
            "chongqing:C07 的备案：公示期 2019-03-01 至 2019-03-05，共 3 个工作日，不足 5 个工作日"
        )
        suspended = "case of hunan:S03 on 2020-08-12 while its use was suspended (since 2020-08-05)"
        assert "暂停" in i18n.finding("national.use-while-suspended", suspended)
        assert i18n.value("open: 3 working days left") == "期限未到：尚余 3 个工作日"  # HN-2018#二(二)
        assert i18n.value("filed late") == "逾期备案"
        assert i18n.heading("first_case") == "首例日期"
        unknown = "a message of a shape no catalogue knows"
        assert i18n.finding("national.fine-range", unknown) == f"罚款超出条款规定范围：{unknown}"
        assert i18n.finding("third-party.rule", unknown) == unknown
        i18n.set_language("en")
        assert i18n.finding("national.late-filing", late) == late
        assert i18n.heading("institution_name") == "institution_name"
    finally:
        i18n.set_language(None)
