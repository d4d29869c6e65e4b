"""The pages: every jurisdiction's catalogue, filings list, training list and index, and every
institution's 院务公开 page, rendered from the views as of one day."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.jurisdictions import NATIONAL, Jurisdiction
from projections.grading import grading_catalogue
from projections.publish.folder import MANIFEST, _swapped_in
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


def publish(views: Views, out_dir: Path, province: str | None = None, as_of: date | None = None) -> list[Path]:
    """Write the public site for every jurisdiction (or ``province`` only) as of ``as_of``.

    The site is written into a new folder and swapped in at ``out_dir`` (a link to it) when
    complete; the previous version is removed, so nothing of it stays online. ``out_dir`` must be
    absent, an empty folder or an earlier site, else it is refused before anything is written.
    Returns the site's files (under ``out_dir``), sorted. The same ledger and ``as_of`` give the
    same bytes.
    """
    day = as_of or date.today()
    chosen = list(views.jurisdictions) if province is None else [views.jurisdiction(province)]
    out = Path(out_dir)
    with _swapped_in(out) as folder:
        site = _Site(folder, environment(), read_stamp(views.app, day))
        names = {j.code: j.name for j in views.jurisdictions}
        # Every licence number the published rows know, before any page is rendered (see _redact).
        privileges: dict[str, list[PrivilegeRow]] = {}
        for j in chosen:
            if j.code == NATIONAL:
                continue
            site.secrets.update(t.physician for t in views.trainees(j.code, as_of=day))
            for inst in views.institutions(j.code, as_of=day):
                privileges[inst.institution] = views.privileges(inst.institution, as_of=day)
                site.secrets.update(p.physician for p in privileges[inst.institution])
        summaries = [_publish_jurisdiction(site, views, j, day, names, privileges) for j in chosen]
        site.page("index.html", "index.html", summaries=summaries, crumbs=[])
        site.write("style.css", (TEMPLATES / "style.css").read_text(encoding="utf-8"))
        if site.stamp.checkpoint is not None:
            site.write("checkpoint.txt", site.stamp.checkpoint.note)
        site.write(MANIFEST, site.manifest())
    return sorted(out / relative for relative in site.written)


def _publish_jurisdiction(
    site: _Site,
    views: Views,
    j: Jurisdiction,
    day: date,
    names: Mapping[str, str],
    privileges_of: Mapping[str, Sequence[PrivilegeRow]],
) -> dict[str, Any]:
    """Every page of one jurisdiction; returns its line on the index."""
    code = site.name("", j.code)
    base = f"{code}/"
    catalog = views.catalog(None if j.code == NATIONAL else j.code, as_of=day)
    techs = {e.ref: e for e in catalog}
    crumbs = [(f"{base}index.html", j.name)]
    site.page(
        f"{base}catalog.html",
        "catalog.html",
        j=j,
        groups=_catalog_groups(catalog, names),
        crumbs=[*crumbs, (f"{base}catalog.html", "目录")],
        national=j.code == NATIONAL,
    )
    if j.code == NATIONAL:
        site.page(f"{base}index.html", "national.html", j=j, entries=len(catalog), crumbs=crumbs)
        return {"j": j, "href": f"{base}index.html", "national": True, "catalog": len(catalog)}

    institutions = views.institutions(j.code, as_of=day)
    filings = views.public_filings(j.code, as_of=day)
    bases = views.training_bases(j.code, as_of=day)
    trainees = views.trainees(j.code, as_of=day)
    cases = views.case_counts(j.code, as_of=day)

    def tech(ref: str) -> dict[str, str]:
        return _tech(ref, techs, names)

    def inst_href(institution: str) -> str:
        return f"institutions/{site.name(f'{base}institutions/', institution)}.html"

    filing_rows = [_filing_row(f, tech, inst_href(f.institution)) for f in filings]
    active = [r for r in filing_rows if r["status"] in ("filed", "in public notice")]
    halted = sorted(
        (r for r in filing_rows if r["status"] in ("suspended", "stopped")),
        key=lambda r: (r["since"], r["code"], r["institution_name"]),
    )
    base_rows = [
        {
            **tech(b.technology),
            "institution": b.institution,
            "institution_name": b.institution_name,
            "href": inst_href(b.institution),
            "status": b.status,
            "status_label": "已备案" if b.status == "filed" else "停止",
            "enrolment_notice": _iso(b.enrolment_notice),
            "filed_on": _iso(b.filed_on),
            "decisions": ", ".join(b.decisions),
        }
        for b in bases
    ]
    trainee_rows = [
        {
            **tech(t.technology),
            "physician_name": t.physician_name or "（姓名未登记）",
            "institution_name": t.institution_name,
            "href": inst_href(t.institution),
            "certified_on": _iso(t.certified_on),
        }
        for t in trainees
    ]
    notice = any(r["notice_until"] for r in filing_rows)
    site.page(
        f"{base}filings.html",
        "filings.html",
        j=j,
        groups=_group(active, lambda r: r["ref"]),
        halted=halted,
        notice=notice,
        crumbs=[*crumbs, (f"{base}filings.html", "备案名单")],
    )
    site.page(
        f"{base}training.html",
        "training.html",
        j=j,
        bases=base_rows,
        trainees=trainee_rows,
        crumbs=[*crumbs, (f"{base}training.html", "培训基地与培训合格人员")],
    )

    per_institution: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in filing_rows:
        per_institution[r["institution"]].append(r)
    cases_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in cases:
        cases_of[c.institution].append({**tech(c.technology), "cases": c.cases})
    for rows in cases_of.values():
        rows.sort(key=lambda r: r["code_sort"])
    inst_rows = []
    for inst in institutions:
        href = inst_href(inst.institution)
        privileges = [
            p
            for p in privileges_of.get(inst.institution, ())
            if p.status in PRIVILEGE_LABELS and _registered(views, p.physician, inst.institution, day)
        ]
        grade_rows = [
            {
                "physician_name": p.physician_name or "（姓名未登记）",
                "level": LEVEL_LABELS.get(p.level, "—") if p.level is not None else "—",
                "procedures": [_procedure(x, techs) for x in p.procedures],
                "status": p.status,
                "status_label": PRIVILEGE_LABELS[p.status],
                "since": _iso(p.since),
            }
            for p in privileges
        ]
        uses = sorted(per_institution.get(inst.institution, []), key=lambda r: (r["code_sort"], r["filed_on"]))
        own_bases = [b for b in base_rows if b["institution"] == inst.institution]
        site.page(
            f"{base}{href}",
            "institution.html",
            j=j,
            inst=inst,
            uses=uses,
            bases=own_bases,
            grades=grade_rows,
            cases=cases_of.get(inst.institution, []),
            notice=notice,
            catalogue=grading_catalogue(views, inst.institution, as_of=day),  # 手术分级管理目录 (#24)
            levels=LEVEL_LABELS,
            crumbs=[*crumbs, (f"{base}{href}", inst.name)],
        )
        inst_rows.append(
            {
                "name": inst.name,
                "city": inst.city,
                "category": inst.category,
                "level": inst.level,
                "href": href,
                "uses": sum(1 for r in uses if r["status"] in ("filed", "in public notice")),
            }
        )
    summary = {
        "j": j,
        "href": f"{base}index.html",
        "national": False,
        "catalog": len(catalog),
        "institutions": len(institutions),
        "filed": len(active),
        "halted": len(halted),
        "bases": len(base_rows),
        "trainees": len(trainee_rows),
    }
    site.page(f"{base}index.html", "jurisdiction.html", j=j, summary=summary, institutions=inst_rows, crumbs=crumbs)
    return summary


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
    return {
        **tech(f.technology),
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
    }


def _tech(ref: str, techs: Mapping[str, CatalogEntry], names: Mapping[str, str]) -> dict[str, str]:
    """A technology as the pages show it: code, name, catalogue and class in force."""
    catalog, _, code = ref.partition(":")
    entry = techs.get(ref)
    return {
        "ref": ref,
        "code": code or ref,
        "code_sort": f"{catalog != NATIONAL:d}{catalog}:{code}",
        "name": entry.name if entry else "",
        "catalog_label": "国家" if catalog == NATIONAL else names.get(catalog, catalog),
        "class_label": CLASS_LABELS.get(entry.tech_class, entry.tech_class) if entry else "不在现行目录",
    }


def _procedure(text: str, techs: Mapping[str, CatalogEntry]) -> str:
    entry = techs.get(text)
    return f"{entry.name}（{entry.code}）" if entry else text


def _catalog_groups(entries: Sequence[CatalogEntry], names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Catalogue entries grouped by (catalogue, class), in the views' order."""
    groups: list[dict[str, Any]] = []
    for e in entries:
        label = ("国家" if e.catalog == NATIONAL else names.get(e.catalog, e.catalog)) + CLASS_LABELS.get(
            e.tech_class, e.tech_class
        )
        if not groups or groups[-1]["label"] != label:
            groups.append({"label": label, "class": e.tech_class, "entries": []})
        groups[-1]["entries"].append({"code": e.code, "name": e.name, "version": e.version, "since": _iso(e.since)})
    return groups


def _group(rows: Iterable[dict[str, Any]], key: Any) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        k = key(r)
        if k not in out:
            out[k] = {
                **{n: r[n] for n in ("ref", "code", "code_sort", "name", "catalog_label", "class_label")},
                "rows": [],
            }
        out[k]["rows"].append(r)
    return sorted(out.values(), key=lambda g: g["code_sort"])


def _iso(value: date | None) -> str:
    return value.isoformat() if value else ""
