"""The pages: every jurisdiction's catalogue, filings list, training list and index, and every
institution's 院务公开 page, rendered from the views as of one day."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.jurisdictions import NATIONAL, Jurisdiction
from projections.grading import grading_catalogue
from projections.ordering import pinyin_key
from projections.publish.folder import MANIFEST, _swapped_in
from projections.publish.naming import slug
from projections.publish.proofs import SCRIPT, PageProofs, Trust, read_script
from projections.publish.render import TEMPLATES, _Site, environment, read_stamp

if TYPE_CHECKING:
    from projections.catalog import CatalogEntry
    from projections.views import FilingRow, PrivilegeRow, Views

STATUS_LABELS = {
    "filed": "已备案",
    "in public notice": "公示中",
    "suspended": "暂停",
    "stopped": "停止",
    "submitted": "已提交",
    "rejected": "不予备案",
}
CLASS_LABELS = {
    "prohibited": "禁止类",
    "restricted": "限制类",
    "class3": "第三类",
    "class2": "第二类",
    "clinical-research": "临床研究类",
}
LEVEL_LABELS = {1: "一级手术", 2: "二级手术", 3: "三级手术", 4: "四级手术"}
PRIVILEGE_LABELS = {"granted": "有效", "suspended": "暂停"}
"""Surgical grades shown in 院务公开: current ones, and suspended ones marked so; revoked are gone."""


ASSETS = ("style.css", "search.js")
"""Files served beside the pages as they are in ``projections/templates``."""
ACTIVE = ("filed", "in public notice")
HALTED = ("suspended", "stopped")
INLINE_INSTITUTIONS = 3
"""A catalogue entry names this many institutions filed for it, then links to the whole list."""
_ANCHOR_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def publish(
    views: Views,
    out_dir: Path,
    province: str | None = None,
    as_of: date | None = None,
    trust: Trust | None = None,
) -> list[Path]:
    """Write the public site for every jurisdiction (or ``province`` only) as of ``as_of``.

    The site is written into a new folder and swapped in at ``out_dir`` (a link to it) when
    complete; the previous version is removed, so nothing of it stays online. ``out_dir`` must be
    absent, an empty folder or an earlier site, else it is refused before anything is written.
    Returns the site's files (under ``out_dir``), sorted. The same ledger and ``as_of`` give the
    same bytes. With ``trust`` (the log's key, a witness policy), the pages of institutions and
    filings carry their decisions' inclusion proofs for the reader's browser (``proofs``).
    """
    day = as_of or date.today()
    chosen = list(views.jurisdictions) if province is None else [views.jurisdiction(province)]
    out = Path(out_dir)
    stamp = read_stamp(views.app, day)
    proofs = None
    if trust is not None and stamp.checkpoint is not None:
        trust.check(stamp.checkpoint.note)
        proofs = PageProofs(views.app, stamp.checkpoint, trust)
    with _swapped_in(out) as folder:
        site = _Site(folder, environment(), stamp)
        run = _Run(site, views, day, {j.code: j.name for j in views.jurisdictions}, proofs=proofs)
        provinces = [j for j in chosen if j.code != NATIONAL]
        # Every licence number the published rows know, before any page is rendered (see _redact).
        for j in provinces:
            site.secrets.update(t.physician for t in views.trainees(j.code, as_of=day))
            for inst in views.institutions(j.code, as_of=day):
                run.privileges[inst.institution] = views.privileges(inst.institution, as_of=day)
                site.secrets.update(p.physician for p in run.privileges[inst.institution])
            run.filings[j.code] = views.public_filings(j.code, as_of=day)
        summaries = [run.jurisdiction(j, provinces) for j in chosen]
        site.page("index.html", "index.html", summaries=summaries, crumbs=[])
        for asset in ASSETS:
            site.write(asset, (TEMPLATES / asset).read_text(encoding="utf-8"))
        if proofs is not None:
            site.write(SCRIPT, read_script())
        if site.stamp.checkpoint is not None:
            site.write("checkpoint.txt", site.stamp.checkpoint.note)
        site.write(MANIFEST, site.manifest())
    return sorted(out / relative for relative in site.written)


@dataclass
class _Run:
    """One publish: the views as of one day, and what every jurisdiction's pages share."""

    site: _Site
    views: Views
    day: date
    names: Mapping[str, str]
    """Every jurisdiction's name by code (a catalogue's label)."""
    privileges: dict[str, list[PrivilegeRow]] = field(default_factory=dict)
    filings: dict[str, list[FilingRow]] = field(default_factory=dict)
    """The public filings of each province published, read once."""
    proofs: PageProofs | None = None
    """Inclusion proofs for the pages, when the publisher gave the keys to check them with."""

    def proof_block(self, decision_ids: Iterable[str]) -> Any:
        """The proofs of the decisions a page shows, or None (the page then carries none)."""
        return None if self.proofs is None else self.proofs.block(decision_ids)

    def folder(self, j: Jurisdiction) -> str:
        return f"{self.site.name('', j.code)}/"

    def inst_href(self, j: Jurisdiction, institution: str) -> str:
        """An institution's page, relative to its province's folder."""
        return f"institutions/{self.site.name(f'{self.folder(j)}institutions/', institution)}.html"

    def jurisdiction(self, j: Jurisdiction, provinces: Sequence[Jurisdiction]) -> dict[str, Any]:
        """Every page of one jurisdiction; returns its line on the index."""
        base = self.folder(j)
        catalog = self.views.catalog(None if j.code == NATIONAL else j.code, as_of=self.day)
        crumbs = [(f"{base}index.html", j.name)]
        filed = self._filed_national(provinces) if j.code == NATIONAL else self._filed_here(j)
        self.site.page(
            f"{base}catalog.html",
            "catalog.html",
            j=j,
            groups=_catalog_groups(catalog, self.names, filed),
            crumbs=[*crumbs, (f"{base}catalog.html", "目录")],
            national=j.code == NATIONAL,
        )
        if j.code == NATIONAL:
            self.site.page(f"{base}index.html", "national.html", j=j, entries=len(catalog), crumbs=crumbs)
            return {"j": j, "href": f"{base}index.html", "national": True, "catalog": len(catalog)}
        return _Province(self, j, {e.ref: e for e in catalog}, crumbs).publish(len(catalog))

    def _filed_here(self, j: Jurisdiction) -> dict[str, dict[str, Any]]:
        """Per technology: the institutions of ``j`` filed for it (pages and the filings list)."""
        per_tech: dict[str, dict[str, str]] = defaultdict(dict)
        for f in self.filings.get(j.code, ()):
            if f.status in ACTIVE:
                per_tech[f.technology][f.institution] = f.institution_name
        out = {}
        for ref, institutions in per_tech.items():
            ordered = sorted(institutions.items(), key=lambda item: (pinyin_key(item[1]), item[0]))
            out[ref] = {
                "filed": [{"label": name, "href": self.inst_href(j, i)} for i, name in ordered[:INLINE_INSTITUTIONS]],
                "more": {"label": f"共 {len(ordered)} 家，见备案名单", "href": f"filings.html#{anchor(ref)}"},
            }
        return out

    def _filed_national(self, provinces: Sequence[Jurisdiction]) -> dict[str, dict[str, Any]]:
        """Per national technology: each published province's count, linked to its filings list."""
        out: dict[str, dict[str, Any]] = defaultdict(lambda: {"filed": [], "more": None})
        for j in provinces:
            counts: dict[str, set[str]] = defaultdict(set)
            for f in self.filings.get(j.code, ()):
                if f.status in ACTIVE:
                    counts[f.technology].add(f.institution)
            for ref in sorted(counts):
                href = f"../{self.folder(j)}filings.html#{anchor(ref)}"
                out[ref]["filed"].append({"label": f"{j.name} {len(counts[ref])} 家", "href": href})
        return out


@dataclass
class _Province:
    """The pages of one province: filings, training, institutions, and its index."""

    run: _Run
    j: Jurisdiction
    techs: Mapping[str, CatalogEntry]
    crumbs: list[tuple[str, str]]

    def tech(self, ref: str) -> dict[str, str]:
        return _tech(ref, self.techs, self.run.names)

    def href(self, institution: str) -> str:
        return self.run.inst_href(self.j, institution)

    def publish(self, catalog_size: int) -> dict[str, Any]:
        run, j = self.run, self.j
        base = run.folder(j)
        filing_rows = [_filing_row(f, self.tech, self.href(f.institution)) for f in run.filings[j.code]]
        active = [r for r in filing_rows if r["status"] in ACTIVE]
        halted = sorted(
            (r for r in filing_rows if r["status"] in HALTED),
            key=lambda r: (r["since"], r["code"], r["institution_name"]),
        )
        groups = _group(active, lambda r: r["ref"])
        notice = any(r["notice_until"] for r in filing_rows)
        run.site.page(
            f"{base}filings.html",
            "filings.html",
            j=j,
            groups=groups,
            halted=halted,
            notice=notice,
            techs=_tech_options([*groups, *_group(halted, lambda r: r["ref"])]),
            cities=_cities(r["city"] for r in filing_rows),
            crumbs=[*self.crumbs, (f"{base}filings.html", "备案名单")],
            proofs=run.proof_block(i for r in [*active, *halted] for i in r["decisions"].split(", ")),
        )
        base_rows, trainee_rows = self._training()
        inst_rows = self._institutions(filing_rows, base_rows, notice)
        summary = {
            "j": j,
            "href": f"{base}index.html",
            "national": False,
            "catalog": catalog_size,
            "institutions": len(inst_rows),
            "filed": len(active),
            "halted": len(halted),
            "bases": len(base_rows),
            "trainees": len(trainee_rows),
        }
        run.site.page(
            f"{base}index.html",
            "jurisdiction.html",
            j=j,
            summary=summary,
            institutions=inst_rows,
            techs=_tech_options(groups),
            cities=_cities(i["city"] for i in inst_rows),
            crumbs=self.crumbs,
        )
        return summary

    def _training(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        run, j = self.run, self.j
        base_rows = [
            {
                **self.tech(b.technology),
                "institution": b.institution,
                "institution_name": b.institution_name,
                "href": self.href(b.institution),
                "status": b.status,
                "status_label": "已备案" if b.status == "filed" else "停止",
                "enrolment_notice": _iso(b.enrolment_notice),
                "filed_on": _iso(b.filed_on),
                "decisions": ", ".join(b.decisions),
            }
            for b in run.views.training_bases(j.code, as_of=run.day)
        ]
        trainee_rows = [
            {
                **self.tech(t.technology),
                "physician_name": t.physician_name or "（姓名未登记）",
                "institution_name": t.institution_name,
                "href": self.href(t.institution),
                "certified_on": _iso(t.certified_on),
            }
            for t in run.views.trainees(j.code, as_of=run.day)
        ]
        base = run.folder(j)
        run.site.page(
            f"{base}training.html",
            "training.html",
            j=j,
            bases=base_rows,
            trainees=trainee_rows,
            crumbs=[*self.crumbs, (f"{base}training.html", "培训基地与培训合格人员")],
        )
        return base_rows, trainee_rows

    def _institutions(
        self, filing_rows: Sequence[dict[str, Any]], base_rows: Sequence[dict[str, Any]], notice: bool
    ) -> list[dict[str, Any]]:
        """Every institution's 院务公开 page (MTM-2018#24); returns the province index's rows."""
        run, j = self.run, self.j
        per_institution: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in filing_rows:
            per_institution[r["institution"]].append(r)
        cases_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for c in run.views.case_counts(j.code, as_of=run.day):
            cases_of[c.institution].append({**self.tech(c.technology), "cases": c.cases})
        for rows in cases_of.values():
            rows.sort(key=lambda r: r["code_sort"])
        inst_rows = []
        for inst in run.views.institutions(j.code, as_of=run.day):
            href = self.href(inst.institution)
            uses = sorted(per_institution.get(inst.institution, []), key=lambda r: (r["code_sort"], r["filed_on"]))
            catalogue = grading_catalogue(run.views, inst.institution, as_of=run.day)  # 手术分级管理目录 (#24)
            shown = [i for r in uses for i in r["decisions"].split(", ")]
            run.site.page(
                f"{run.folder(j)}{href}",
                "institution.html",
                j=j,
                inst=inst,
                uses=uses,
                bases=[b for b in base_rows if b["institution"] == inst.institution],
                grades=self._grades(inst.institution),
                cases=cases_of.get(inst.institution, []),
                notice=notice,
                catalogue=catalogue,
                levels=LEVEL_LABELS,
                crumbs=[*self.crumbs, (f"{run.folder(j)}{href}", inst.name)],
                proofs=run.proof_block([*shown, *([catalogue.decision] if catalogue and catalogue.procedures else [])]),
            )
            filed = [r for r in uses if r["status"] in ACTIVE]
            inst_rows.append(
                {
                    "name": inst.name,
                    "city": inst.city,
                    "category": inst.category,
                    "level": inst.level,
                    "href": href,
                    "uses": len(filed),
                    "techs": " ".join(sorted({r["anchor"] for r in filed})),
                    "search": f"{inst.name} {inst.city}",
                }
            )
        return inst_rows

    def _grades(self, institution: str) -> list[dict[str, Any]]:
        """Surgical grades of physicians still registered at the institution (MTM-2018#20, #24)."""
        run = self.run
        privileges = [
            p
            for p in run.privileges.get(institution, ())
            if p.status in PRIVILEGE_LABELS and _registered(run.views, p.physician, institution, run.day)
        ]
        return [
            {
                "physician_name": p.physician_name or "（姓名未登记）",
                "level": LEVEL_LABELS.get(p.level, "—") if p.level is not None else "—",
                "procedures": [_procedure(x, self.techs) for x in p.procedures],
                "status": p.status,
                "status_label": PRIVILEGE_LABELS[p.status],
                "since": _iso(p.since),
            }
            for p in privileges
        ]


def anchor(ref: str) -> str:
    """A technology's anchor on the pages (``#hunan-S14``, ``#national-G10``): its catalogue and
    code, so a bookmark keeps pointing at it when other technologies are added or removed. A code
    that is not a plain name is encoded (``slug``) so the anchor stays one token."""
    catalog, _, code = ref.partition(":")
    text = f"{catalog}-{code}" if code else ref
    return text if _ANCHOR_SAFE.fullmatch(text) else f"t-{slug(ref)}"


def _cities(cities: Iterable[str]) -> list[str]:
    return sorted({c for c in cities if c}, key=pinyin_key)


def _tech_options(groups: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """The technology filter's choices: each technology once, in catalogue order."""
    seen: dict[str, tuple[str, str]] = {}
    for g in groups:
        seen.setdefault(g["code_sort"], (g["anchor"], f"{g['code']} {g['name'] or g['ref']}"))
    return [seen[k] for k in sorted(seen)]


def _registered(views: Views, physician: str, institution: str, day: date) -> bool:
    """Is the physician still registered at the institution on ``day``? A grade granted to someone
    who has since left is no longer the institution's to disclose (院务公开, MTM-2018#24)."""
    entries = views.trail(physician=physician, institution=institution, as_of=day, findings=False).entries
    registrations = [e.kind for e in entries if e.kind in ("physician.registered", "physician.deregistered")]
    return not registrations or registrations[-1] == "physician.registered"


def _filing_row(f: FilingRow, tech: Any, href: str) -> dict[str, Any]:
    label = STATUS_LABELS.get(f.status, f.status)
    if f.status == "in public notice" and f.notice_until:
        label = f"公示中（至 {f.notice_until.isoformat()}）"
    tech_fields = tech(f.technology)
    return {
        **tech_fields,
        "institution": f.institution,
        "institution_name": f.institution_name,
        "href": href,
        "city": f.city,
        "status": f.status,
        "status_label": label,
        "filed_on": _iso(f.filed_on),
        "authority": f.authority or "",
        "since": _iso(f.since),
        "notice_until": _iso(f.notice_until),
        "decisions": ", ".join(f.decisions),
        "search": f"{f.institution_name} {f.city} {tech_fields['code']} {tech_fields['name']} {f.authority or ''}",
        # Where the filings list shows it: its technology's section while in force, else the halted.
        "listed_at": tech_fields["anchor"] if f.status in ACTIVE else "halted",
    }


def _tech(ref: str, techs: Mapping[str, CatalogEntry], names: Mapping[str, str]) -> dict[str, str]:
    """A technology as the pages show it: code, name, catalogue and class in force."""
    catalog, _, code = ref.partition(":")
    entry = techs.get(ref)
    return {
        "ref": ref,
        "anchor": anchor(ref),
        "code": code or ref,
        "code_sort": f"{catalog != NATIONAL:d}{catalog}:{code}",
        "name": entry.name if entry else "",
        "catalog_label": "国家" if catalog == NATIONAL else names.get(catalog, catalog),
        "class_label": CLASS_LABELS.get(entry.tech_class, entry.tech_class) if entry else "不在现行目录",
    }


def _procedure(text: str, techs: Mapping[str, CatalogEntry]) -> str:
    entry = techs.get(text)
    return f"{entry.name}（{entry.code}）" if entry else text


def _catalog_groups(
    entries: Sequence[CatalogEntry], names: Mapping[str, str], filed: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Catalogue entries grouped by (catalogue, class), in the views' order, each with the
    institutions filed for it (``filed``, by technology)."""
    groups: list[dict[str, Any]] = []
    for e in entries:
        label = ("国家" if e.catalog == NATIONAL else names.get(e.catalog, e.catalog)) + CLASS_LABELS.get(
            e.tech_class, e.tech_class
        )
        if not groups or groups[-1]["label"] != label:
            groups.append({"label": label, "class": e.tech_class, "entries": []})
        links = filed.get(e.ref, {})
        groups[-1]["entries"].append(
            {
                "code": e.code,
                "name": e.name,
                "version": e.version,
                "since": _iso(e.since),
                "anchor": anchor(e.ref),
                "filed": links.get("filed", []),
                "more": links.get("more"),
            }
        )
    return groups


def _group(rows: Iterable[dict[str, Any]], key: Any) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        k = key(r)
        if k not in out:
            out[k] = {
                **{n: r[n] for n in ("ref", "anchor", "code", "code_sort", "name", "catalog_label", "class_label")},
                "rows": [],
            }
        out[k]["rows"].append(r)
    return sorted(out.values(), key=lambda g: g["code_sort"])


def _iso(value: date | None) -> str:
    return value.isoformat() if value else ""
