"""Plots where people would rather look: filings, suspensions and findings per month.

``filings-over-time`` is a core report with the same ``Report`` shape plugins contribute through
``ledger_reports`` (``cli.py`` lists it beside theirs), so it also writes as CSV or XLSX; as PNG or
SVG it is drawn by ``render`` with matplotlib. The counts come from a province's inspection trail:

* filings — ``filing.completed`` decisions that filed a use (the filing authority's completion of a
  live submission, MTM-2018#11-#12, the date MTM-2018#40 publishes), as the standing of each use
  has them (``projections.standing``): a retracted one, or one void for want of a submission, not
  counted;
* suspensions — ``use.suspended`` and ``use.stopped`` (MTM-2018#25, #41-#44);
* findings — what plugins' rules derive from the decisions (never stored, ARCHITECTURE.md rule 2),
  counted in the month of the act they judge.

Output is deterministic (no timestamp in the SVG, a fixed hash salt for its ids), and Chinese
labels are used only where a CJK font is installed; elsewhere the axes are labelled in English
rather than drawn as empty boxes, and ``render`` warns (on stderr, through logging) that it did.
"""

from __future__ import annotations

import io
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date
from functools import cache
from typing import TYPE_CHECKING

from ledger.errors import ConfigurationError, DecisionError, LedgerError
from projections import localtime
from projections.commandline import parse_day
from projections.reports import Column, Option, Report, Table

if TYPE_CHECKING:
    from projections.views import TrailEntry, Views

log = logging.getLogger(__name__)

PLOT_FORMATS = ("png", "svg")
SUSPENSION_KINDS = ("use.suspended", "use.stopped")
MAX_MONTHS = 1200
_MONTH = re.compile(r"\A(\d{4})-(\d{2})\Z")

CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "Heiti SC",
    "Arial Unicode MS",
)
"""Fonts with the glyphs of simplified Chinese, in order of preference."""
NO_CJK_FONT = (
    "warning: no font with Chinese glyphs is installed (e.g. Debian's fonts-noto-cjk); the plot is labelled in English"
)

COLUMNS = (
    Column("月份", "month", number_format="@", width=10),
    Column("备案", "filings", number_format="0", width=8),
    Column("暂停或停止", "suspensions", number_format="0", width=12),
    Column("发现问题", "findings", number_format="0", width=10),
)
ENGLISH = {"month": "month", "filings": "filings", "suspensions": "suspensions or stops", "findings": "findings"}


def _option(options: Mapping[str, str | None], name: str) -> str | None:
    for key in (name, f"--{name}", name.replace("-", "_")):
        value = options.get(key)
        if value:
            return value
    return None


def _month(value: str, name: str) -> tuple[int, int]:
    match = _MONTH.match(value.strip())
    if match is None or not 1 <= int(match.group(2)) <= 12:
        msg = f"--{name} takes a month as YYYY-MM, got {value!r}"
        raise ConfigurationError(msg)
    return int(match.group(1)), int(match.group(2))


def _months(first: tuple[int, int], last: tuple[int, int]) -> list[str]:
    count = (last[0] - first[0]) * 12 + last[1] - first[1] + 1
    if count < 1:
        msg = f"--from-month {first[0]:04d}-{first[1]:02d} is after --to-month {last[0]:04d}-{last[1]:02d}"
        raise ConfigurationError(msg)
    if count > MAX_MONTHS:
        msg = f"{count} months is too many to plot (at most {MAX_MONTHS}): narrow --from-month/--to-month"
        raise ConfigurationError(msg)
    out = []
    year, month = first
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def build_filings_over_time(views: Views, options: Mapping[str, str | None]) -> Table:
    """Per month of the province's history: filings completed, uses suspended or stopped, findings."""
    province = _option(options, "province")
    if not province:
        raise ConfigurationError("filings-over-time needs --province (e.g. hunan)")
    j = views.jurisdiction(province)
    as_of_text = _option(options, "as-of")
    try:
        as_of = parse_day(as_of_text, "--as-of") if as_of_text else localtime.today()
    except DecisionError as e:
        raise ConfigurationError(e.message) from None
    position = views.position_at(_option(options, "known-at"))
    trail = views.trail(province=j.code, as_of=as_of, known_at=position)
    retracted = _retracted(views, trail.entries)
    suspensions = Counter(
        e.effective.strftime("%Y-%m")
        for e in trail.entries
        if e.kind in SUSPENSION_KINDS and e.decision_id not in retracted
    )
    findings = Counter(f.effective.strftime("%Y-%m") for f in trail.findings)
    filings = _filings(views, {e.institution for e in trail.entries if e.institution}, as_of, position)
    months = _period(options, as_of, sorted({*filings, *suspensions, *findings}))
    rows = [{"month": m, "filings": filings[m], "suspensions": suspensions[m], "findings": findings[m]} for m in months]
    title = f"{j.name}限制类技术备案、暂停和发现问题（按月）"
    return Table(
        title=title,
        columns=COLUMNS,
        rows=rows,
        header_lines=(
            title,
            f"统计期间：{months[0]}至{months[-1]}；数据截至 {as_of.isoformat()}",
            "备案：备案机关完成备案（《办法》第四十条）；暂停或停止：第二十五条、第四十一条至第四十四条；"
            "发现问题：由规则从决定推导",
        ),
    )


def _retracted(views: Views, entries: Iterable[TrailEntry]) -> set[str]:
    """The decisions the trail's retractions withdrew: they count for nothing."""
    retracted: set[str] = set()
    for e in entries:
        if e.kind == "decision.retracted":
            try:
                target = views.app.decision(e.decision_id).record.fields.get("retracts")
            except LedgerError:
                continue
            if isinstance(target, str):
                retracted.add(target)
    return retracted


def _filings(views: Views, institutions: Iterable[str], as_of: date, position: int) -> Counter[str]:
    """Filings per month as the standing of each use has them (projections.standing): a completion
    counts when it filed a live submission, not one void for want of it (MTM-2018#11)."""
    filings: Counter[str] = Counter()
    for institution in sorted(institutions):
        facts = views.facts_for(institution, as_of=as_of, known_at=position)
        for key in facts.uses:
            for state in facts.use_states(key):
                r = state.decision.record
                if r.kind == "filing.completed" and not state.unbacked:
                    filings[r.effective.strftime("%Y-%m")] += 1
    return filings


def _period(options: Mapping[str, str | None], as_of: date, seen: list[str]) -> list[str]:
    """The months plotted: ``--from-month``/``--to-month``, by default the first month with a count
    to ``as_of``'s (named apart from the date options ``--from``/``--to`` of other commands)."""
    start_text, end_text = _option(options, "from-month"), _option(options, "to-month")
    end = _month(end_text, "to-month") if end_text else (as_of.year, as_of.month)
    if start_text:
        start = _month(start_text, "from-month")
    elif seen:
        start = _month(seen[0], "from-month")
    else:
        start = end
    return _months(start, end)


FILINGS_OVER_TIME = Report(
    name="filings-over-time",
    title="Filings, suspensions and findings per month (png/svg plot, or csv/xlsx)",
    build=build_filings_over_time,
    options=(
        Option("province", "a province code or name, e.g. hunan", required=True),
        Option("from-month", "first month, YYYY-MM (default: the first month with any count)"),
        Option("to-month", "last month, YYYY-MM (default: the as-of month)"),
        Option("as-of", "YYYY-MM-DD: decisions in force that day (default: today)"),
    ),
    article="MTM-2018#40",
)

PLOTTABLE = frozenset({FILINGS_OVER_TIME.name})
"""Reports whose table ``render`` can draw: a month column, then one count column per series."""


@cache
def cjk_font() -> str | None:
    """The first installed font that has simplified Chinese glyphs, or None."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def render(table: Table, fmt: str, *, fallback_title: str = "") -> bytes:
    """Draw a month-by-series table as PNG or SVG bytes: one bar chart per series, one above the
    other on a shared month axis (small multiples read better than grouped bars over years).

    Uses matplotlib's object API (no pyplot, no global figure state) so it is safe to call from
    anywhere; the same table gives the same bytes.
    """
    if fmt not in PLOT_FORMATS:
        msg = f"a plot is written as {' or '.join(PLOT_FORMATS)}, not {fmt!r}"
        raise ConfigurationError(msg)
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    font = cjk_font()
    if font is None:
        log.warning(NO_CJK_FONT)
    x_column, *series = table.columns
    series = series or [x_column]
    months = [str(r.get(x_column.key, "")) for r in table.rows]
    n = len(months)

    def label(column: Column) -> str:
        return column.name if font else ENGLISH.get(column.key, column.key)

    if n <= 24:
        ticks = list(range(n))
        tick_labels = months
    else:
        every = 1 if n <= 240 else 5
        ticks = [i for i, m in enumerate(months) if m.endswith("-01") and int(m[:4]) % every == 0] or [0]
        tick_labels = [months[i][:4] for i in ticks]
    families = [font, "DejaVu Sans"] if font else ["DejaVu Sans"]
    colours = ("#0b4f8a", "#d97706", "#b91c1c", "#15803d", "#7c3aed")
    with matplotlib.rc_context(
        {
            "svg.hashsalt": "medtech-ledger",
            "svg.fonttype": "path",
            "axes.unicode_minus": False,
            "font.family": "sans-serif",
            "font.sans-serif": families,
        }
    ):
        fig = Figure(figsize=(min(max(7.0, 0.1 * n + 4), 14.0), 1.5 + 1.6 * len(series)), dpi=120)
        axes = fig.subplots(len(series), 1, sharex=True, squeeze=False)[:, 0]
        for k, (ax, column) in enumerate(zip(axes, series, strict=True)):
            values = [float(r.get(column.key) or 0) for r in table.rows]
            ax.bar(range(n), values, width=0.8, color=colours[k % len(colours)])
            ax.set_ylabel(label(column), rotation=0, ha="right", va="center")
            ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=3))
            ax.set_ylim(0, max(1.0, *values) * 1.15)
            ax.grid(axis="y", color="#d8dde4", linewidth=0.6)
            ax.set_axisbelow(True)
            ax.spines[["top", "right"]].set_visible(False)
            ax.text(
                1.0,
                1.0,
                f"{'合计' if font else 'total'} {sum(values):g}",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=9,
                color="#5b6470",
            )
        last = axes[-1]
        last.set_xlim(-0.6, n - 0.4)
        if n <= 24:
            last.set_xticks(ticks, tick_labels, rotation=45, ha="right")
        else:
            last.set_xticks(ticks, tick_labels)
        last.set_xlabel(label(x_column))
        fig.suptitle(table.title if font else (fallback_title or table.title), fontsize=12)
        fig.align_ylabels(list(axes))
        fig.tight_layout()
        buffer = io.BytesIO()
        metadata: dict[str, str | None] = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(buffer, format=fmt, metadata=metadata)
    return buffer.getvalue()
