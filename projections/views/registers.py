"""The registers the lists are read against: the catalogue, the institutions, the physicians' names.

A list of a province or an institution joins its rows with the institutions in scope (``_listed``),
so it reads its own rows, not the country's; the names of technologies and physicians are read
apart, only those a list shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from ledger.jurisdictions import NATIONAL
from projections.catalog import CLASS_ORDER, CatalogEntry
from projections.views.base import IN_FORCE, ViewsBase
from projections.views.rows import InstitutionRow


class Registers(ViewsBase):
    """The catalogue and the institutions in force, and the scope a list is read in."""

    def catalog(
        self, province: str | None = None, *, as_of: date | None = None, known_at: int | str | datetime | None = None
    ) -> list[CatalogEntry]:
        """The catalogue in force: national entries plus the province's own (MTM-2018#5-#9)."""
        day, n = self._when(as_of, known_at)
        catalogs = [NATIONAL] + ([self.jurisdiction(province).code] if province else [])
        rows = self._rows(
            "view_catalog",
            ("catalog", "code", "name", "class", "version", "decisions"),
            f"catalog IN ({', '.join('?' * len(catalogs))})",
            catalogs,
            day,
            n,
        )
        entries = [CatalogEntry(r[0], r[1], r[2], r[3], r[4], r[5], date.fromisoformat(r[6])) for r in rows]
        return sorted(entries, key=lambda e: (e.catalog != NATIONAL, CLASS_ORDER.get(e.tech_class, 9), e.code))

    def _institutions(self, day: str, n: int, province: str | None = None) -> dict[str, InstitutionRow]:
        where, params = "", ()  # type: tuple[str, tuple[str, ...]]
        if province:
            names = self._province_names(province)
            where, params = f"province IN ({', '.join('?' * len(names))})", tuple(names)
        rows = self._rows(
            "view_institutions",
            ("institution", "name", "province", "city", "category", "level", "licensing_authority"),
            where,
            params,
            day,
            n,
        )
        return {r[0]: InstitutionRow(*r[:7]) for r in rows}

    def _institution(self, day: str, n: int, institution: str) -> InstitutionRow | None:
        """One institution as ``_institutions`` has it, by its key (not the whole country's list)."""
        rows = self._rows(
            "view_institutions",
            ("institution", "name", "province", "city", "category", "level", "licensing_authority"),
            "key = ?",
            (institution,),
            day,
            n,
        )
        found = {r[0]: InstitutionRow(*r[:7]) for r in rows}
        return found.get(institution)

    def _scope(self, day: str, n: int, province: str | None, institution: str | None) -> tuple[str, list[Any]]:
        """The condition (and its parameters) on ``view_institutions`` rows ``i`` that keeps the
        institutions a list may show: registered on ``day`` as known at ``n`` (as
        ``_institutions`` has them), in ``province``, or just ``institution``. A list joins it
        (``_joined``), so that a province's or an institution's list reads its own rows, not the
        country's, and the institutions' own rows are not read apart."""
        where = [IN_FORCE.format("i")]
        params: list[Any] = [day, day, n, n]
        if province:
            names = self._province_names(province)
            where.append(f"i.province IN ({', '.join('?' * len(names))})")
            params.extend(names)
        if institution is not None:
            where.append("i.key = ?")
            params.append(institution)
        return " AND ".join(where), params

    def _joined(self, day: str, n: int, province: str | None, institution: str | None) -> tuple[str, list[Any]]:
        """``JOIN`` of a list's rows ``v`` with their institutions ``i`` in scope (``_scope``)."""
        where, params = self._scope(day, n, province, institution)
        return f"JOIN {self.db.table('view_institutions')} i ON i.key = v.institution AND {where}", params

    def _listed(
        self, table: str, columns: Sequence[str], day: str, n: int, province: str | None, institution: str | None
    ) -> list[tuple[Any, ...]]:
        """The rows of the list ``table`` in force on ``day`` as known at ``n``, of the
        institutions in scope (``_scope``): ``columns``, then ``valid_from``, and the
        institution's name, city and province, joined (not the scope's institutions read apart).
        (The technologies' names are read apart: a few for hundreds of rows.)"""
        join, params = self._joined(day, n, province, institution)
        sql = (
            f"SELECT {', '.join('v.' + c for c in columns)}, v.valid_from, i.name, i.city, i.province "
            f"FROM {self.db.table(table)} v {join} WHERE {IN_FORCE.format('v')}"
        )
        with self.db.transaction(write=False) as c:
            return c.execute(sql, (*params, day, day, n, n)).fetchall()

    def _technology_names(self, day: str, n: int, refs: Iterable[str] | None = None) -> dict[str, str]:
        """Names by technology reference: the whole catalogue's, or only those of ``refs``."""
        if refs is None:
            rows = self._rows("view_catalog", ("catalog", "code", "name"), "", (), day, n)
            return {f"{r[0]}:{r[1]}": r[2] for r in rows}
        keys = sorted(set(refs))
        names: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = self._rows(
                "view_catalog", ("catalog", "code", "name"), f"key IN ({', '.join('?' * len(chunk))})", chunk, day, n
            )
            names.update((f"{r[0]}:{r[1]}", r[2]) for r in rows)
        return names

    def institutions(
        self, province: str | None = None, *, as_of: date | None = None, known_at: int | str | datetime | None = None
    ) -> list[InstitutionRow]:
        day, n = self._when(as_of, known_at)
        return sorted(self._institutions(day, n, province).values(), key=lambda i: (i.province, i.city, i.institution))

    def _physician_names(self, day: str, n: int, physicians: Sequence[str] | None = None) -> dict[str, str]:
        """Names by practising licence number: every physician's, or only ``physicians``'."""
        # A physician deregistered since keeps the name they had: the list shows who was certified.
        t = self.db.table("view_physicians")
        sql = f"SELECT physician, name FROM {t} WHERE valid_from <= ? AND known_from <= ? AND known_to > ?"
        names: dict[str, str] = {}
        with self.db.transaction(write=False) as c:
            if physicians is None:
                names.update(c.execute(sql + " ORDER BY valid_from", (day, n, n)).fetchall())
                return names
            for start in range(0, len(physicians), 500):
                chunk = physicians[start : start + 500]
                names.update(
                    c.execute(
                        sql + f" AND physician IN ({', '.join('?' * len(chunk))}) ORDER BY valid_from",
                        (day, n, n, *chunk),
                    ).fetchall()
                )
        return names
