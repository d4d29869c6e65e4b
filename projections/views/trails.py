"""The inspection trail (MTM-2018#35, MTM-2009#46): every decision about a subject in
effective-date order, with its basis, and the findings the rules judge of it."""

from __future__ import annotations

from datetime import date, datetime

from ledger.application import no_cycle_collection
from ledger.decisions import DecisionRecord, record_from_text
from ledger.frozen import assemble
from ledger.jurisdictions import NATIONAL
from projections.findings import SEVERITY_ORDER, Finding
from projections.views.context import RulesContext
from projections.views.rows import Trail, TrailEntry


class Trails(RulesContext):
    """Trails of an institution, a physician, a technology or a province (see the module docstring)."""

    @no_cycle_collection()
    def trail(
        self,
        *,
        province: str | None = None,
        institution: str | None = None,
        physician: str | None = None,
        technology: str | None = None,
        as_of: date | None = None,
        known_at: int | str | datetime | None = None,
        findings: bool = True,
    ) -> Trail:
        """Every decision about the subject in effective-date order, with the findings judged of it."""
        day, n = self._when(as_of, known_at)
        where, params = [], []
        for column, value in (("institution", institution), ("physician", physician), ("technology", technology)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if province is not None:
            names = self._province_names(province)
            where.append(f"jurisdiction IN ({', '.join('?' * len(names))})")
            params.extend(names)
        logged: list[tuple[int, DecisionRecord]] = []
        if findings:
            # Judged: each record is parsed anyway, so the entry takes its envelope from it.
            rows = self._trail_rows(" AND ".join(where), params, day, n, records=True)
            logged = [(int(r[0]), record_from_text(r[5])) for r in rows]
            entries = [
                assemble(
                    TrailEntry,
                    {
                        "effective": record.effective,
                        "position": position,
                        "decision_id": record.id,
                        "kind": record.kind,
                        "by": record.by,
                        "basis": record.basis,
                        "institution": r[1],
                        "physician": r[2],
                        "technology": r[3],
                        "summary": r[4],
                    },
                )
                for r, (position, record) in zip(rows, logged, strict=True)
            ]
        else:
            entries = [
                assemble(
                    TrailEntry,
                    {
                        "effective": date.fromisoformat(r[3]),
                        "position": int(r[0]),
                        "decision_id": r[1],
                        "kind": r[2],
                        "by": r[4],
                        "basis": r[5],
                        "institution": r[6],
                        "physician": r[7],
                        "technology": r[8],
                        "summary": r[9],
                    },
                )
                for r in self._trail_rows(" AND ".join(where), params, day, n, records=False)
            ]
        judged: list[Finding] = []
        if findings:
            scopes = sorted({e.institution for e in entries if e.institution})
            # One institution's whole trail is exactly the rows its findings are judged on.
            whole = institution is not None and physician is None and technology is None and province is None
            for scope in scopes:
                judged.extend(
                    self.findings_for(
                        scope,
                        as_of=date.fromisoformat(day),
                        known_at=n,
                        _logged=logged if whole and scope == institution else None,
                    )
                )
            judged = [
                f
                for f in judged
                if (institution is None or f.institution == institution)
                and (physician is None or f.physician == physician)
                and (technology is None or f.technology == technology)
            ]
            if province in (None, NATIONAL) and institution is None and physician is None:
                judged.extend(
                    f
                    for f in self.findings_for(None, as_of=date.fromisoformat(day), known_at=n)
                    if technology is None or f.technology == technology
                )
        judged.sort(key=lambda f: (f.effective, SEVERITY_ORDER.get(f.severity, 9), f.rule, f.decisions))
        return Trail(entries, judged)
