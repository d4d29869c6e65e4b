"""Publishing: the disclosure lists as a static web site, and reports as spreadsheets.

Why a site: the rules say the lists are published to society (向社会公布) — the institutions filed for
each restricted technology with date and authority (MTM-2018#40), the training bases (#30), and each
institution's own 院务公开 (#24) — and Chongqing notices every filing publicly for five working days
(CQ-2017 公示). People read those on a phone, not as a JSON dump. ``publish`` renders the views as
of one day into plain HTML (Jinja2 with autoescape, ``lang="zh-CN"``, UTF-8), with one small script
served beside the pages for search and filters (the pages read whole without it):

    index.html                      every jurisdiction a plugin speaks for, national first
    <code>/index.html               a province: summary and its institutions
    <code>/catalog.html             the catalogue in force (national + provincial, MTM-2018#5-#9)
    <code>/filings.html             filed per restricted technology; suspended and stopped (#40, #41-#44)
    <code>/training.html            training bases (#29-#30) and certified trainees, names only (#33)
    <code>/institutions/<id>.html   院务公开 (#24): technologies, surgical grades by name, cases
    checkpoint.txt                  the signed checkpoint the pages were stamped with, if any
    style.css  search.js
    proofs.js                       checks the pages' inclusion proofs in the browser (``proofs``)
    manifest.json                   marks the folder as a site this command wrote; lists its files

The modules: ``folder`` (the atomic, confined swap-in, docs/publishing.md), ``naming`` (page
names), ``render`` (the stamp, templates, redaction), ``pages`` (what each page shows, anchors by
technology code, the links between catalogue and filings), ``order`` (pinyin order) and
``spreadsheets`` (``write_xlsx``: the official form's layout, print setup, 填报人, 注, nil returns).

What is never published: physicians' licence numbers (they are not in any page nor in any URL;
pages name physicians only), case references (cases are published as counts), free-text reasons
and notes (they may quote either). As a last guard, every licence number the pages' rows know is
redacted from the rendered text should a name field ever carry one.

Tamper evidence: every page carries the ledger position it was built from, the as-of date and the
latest signed checkpoint (``ledger.integrity``), says whether that checkpoint covers every record
the page reflects, and how to check it (``ledger verify``, ``ledger prove``). Output is
deterministic — no generation timestamp — so anyone holding the same ledger can run ``ledger
publish`` with the same ``--as-of`` and compare the bytes.
"""

from __future__ import annotations

from ledger.errors import ConfigurationError
from projections.publish.folder import GENERATOR, MANIFEST
from projections.publish.naming import MAX_NAME, slug
from projections.publish.pages import CLASS_LABELS, LEVEL_LABELS, PRIVILEGE_LABELS, STATUS_LABELS, publish
from projections.publish.proofs import Trust, trust_from
from projections.publish.render import SITE_TITLE, TEMPLATES, Stamp, _Site, environment, read_stamp
from projections.publish.spreadsheets import write_xlsx

__all__ = [
    "CLASS_LABELS",
    "GENERATOR",
    "LEVEL_LABELS",
    "MANIFEST",
    "MAX_NAME",
    "PRIVILEGE_LABELS",
    "SITE_TITLE",
    "STATUS_LABELS",
    "TEMPLATES",
    "ConfigurationError",
    "Stamp",
    "Trust",
    "_Site",
    "environment",
    "publish",
    "read_stamp",
    "slug",
    "trust_from",
    "write_xlsx",
]
