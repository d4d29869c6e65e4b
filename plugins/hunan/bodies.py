"""Hunan's public bodies and its filing authority (HN-2018), declared through ``ledger_bodies``.

The provincial commission under its successive names, and the health authorities of its fourteen
cities and prefectures, each of which licenses institutions and receives their filings: a
restricted technology is filed "向核发《医疗机构执业许可证》的卫生行政部门" (HN-2018#二(二)).
"""

from __future__ import annotations

from ledger import Body, Competence

PROVINCE = Body(
    names=("湖南省卫生健康委员会", "湖南省卫生和计划生育委员会", "湖南省卫生计生委", "湖南省卫生厅"),
    jurisdiction="hunan",
    role="province",
    parent="国家卫生健康委",
)
CITIES = (
    "长沙市", "株洲市", "湘潭市", "衡阳市", "邵阳市", "岳阳市", "常德市",
    "张家界市", "益阳市", "郴州市", "永州市", "怀化市", "娄底市", "湘西土家族苗族自治州",
)  # fmt: skip


BODIES: tuple[Body | Competence, ...] = (
    PROVINCE,
    *(Body.local(place, jurisdiction="hunan", role="city", parent=PROVINCE.name) for place in CITIES),
    Competence("filing.completed", "filing-authority", "HN-2018#二(二)", jurisdiction="hunan"),
    Competence("filing.rejected", "filing-authority", "HN-2018#二(二)", jurisdiction="hunan"),
)
