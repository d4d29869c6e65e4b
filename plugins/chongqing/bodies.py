"""Chongqing's public bodies and its filing authorities (CQ-2017), declared through ``ledger_bodies``.

The municipal commission (a province-level body) under its successive names, and the health
authorities of its districts and counties. A 第二类 technology is filed with the district (委属
institutions with the city), a restricted one with the city (CQ-2017#二(二)): either way the
authority that licensed the institution or the city above it.
"""

from __future__ import annotations

from ledger import Body, Competence

CITY = Body(
    names=("重庆市卫生健康委员会", "重庆市卫生和计划生育委员会", "重庆市卫生计生委", "重庆市卫生局"),
    jurisdiction="chongqing",
    role="province",
    parent="国家卫生健康委",
)
DISTRICTS = (
    "渝中区", "大渡口区", "江北区", "沙坪坝区", "九龙坡区", "南岸区", "北碚区", "渝北区", "巴南区",
    "万州区", "涪陵区", "黔江区", "长寿区", "江津区", "合川区", "永川区", "南川区", "綦江区",
    "大足区", "璧山区", "铜梁区", "潼南区", "荣昌区", "开州区", "梁平区", "武隆区",
)  # fmt: skip


BODIES: tuple[Body | Competence, ...] = (
    CITY,
    *(Body.local(place, jurisdiction="chongqing", role="district", parent=CITY.name) for place in DISTRICTS),
    Competence("filing.completed", "filing-authority", "CQ-2017#二(二)", jurisdiction="chongqing"),
    Competence("filing.rejected", "filing-authority", "CQ-2017#二(二)", jurisdiction="chongqing"),
)
