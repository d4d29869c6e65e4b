"""Jurisdictions: the national level and the provinces that plugins speak for.

A jurisdiction's ``code`` (``national``, ``hunan``) names catalogues (``hunan:S14``) and selects
views (``--province hunan``); its ``name`` is how decisions write the province (``湖南省`` in
``institution.registered``). Core knows only ``national``; every province comes from a plugin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NATIONAL = "national"


@dataclass(frozen=True, order=True)
class Jurisdiction:
    """A jurisdiction a plugin contributes through ``ledger_jurisdictions``."""

    code: str
    name: str
    aliases: tuple[str, ...] = field(default=(), compare=False)
    """Other spellings decisions use for the province (``湖南``)."""

    def matches(self, province: str) -> bool:
        """Does the ``province`` written in a decision mean this jurisdiction?"""
        return province in (self.code, self.name, *self.aliases)
