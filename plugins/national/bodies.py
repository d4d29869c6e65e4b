"""The national bodies (MTM-2009#6, MTM-2018#4), declared through ``ledger_bodies``.

One commission under its successive names (卫生部 until 2013, 国家卫生计生委 until 2018, then
国家卫生健康委): decisions of any of them are the commission's. Its expert centre acts for it and
decides nothing on its own authority.
"""

from __future__ import annotations

from ledger import Body

COMMISSION = Body(
    names=("国家卫生健康委", "国家卫生健康委员会", "国家卫生计生委", "国家卫生和计划生育委员会", "卫生部"),
    jurisdiction="national",
    role="commission",
)
CENTRE = Body(
    names=("国家卫生健康委医疗管理服务指导中心",),
    jurisdiction="national",
    role="agency",
    parent=COMMISSION.name,
)
BODIES: tuple[Body, ...] = (COMMISSION, CENTRE)
