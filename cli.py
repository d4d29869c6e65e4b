"""The ``ledger`` command line: arguments in, formatted views out. It holds no rule.

Commands are grouped by what they act on (decisions, views, plugins); every view prints a table for
people or ``--format json|csv`` for programs. Every ``LedgerError`` becomes one clear message on
stderr and the error's exit code: a user never sees a traceback for bad input.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import io
import json
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import click
from eventsourcing.persistence import PersistenceError

from ledger import canonical, cosigning, integrity
from ledger import follow as following
from ledger.application import (
    DB_ENV,
    MAX_LINE_BYTES,
    ImportResult,
    LedgerApplication,
    database_env,
    redact,
)
from ledger.decisions import from_json_dict, kind_specs, parse_line
from ledger.errors import (
    ConfigurationError,
    DecisionError,
    LedgerError,
    MalformedDecision,
    NotFound,
    PluginError,
    StorageError,
    UnknownReference,
)
from ledger.integrity import tiles_out
from ledger.plugins import plugin_manager
from ledger.policy import load_policy
from ledger.tiles import TileError
from projections import i18n, localtime, location, lookup, plots, progress, publish, queries
from projections.commandline import FORMATS, F, format_option, open_app, open_views, option_day, time_options
from projections.output import cell_text, display_width, emit, safe_csv, shown_cell, visible
from projections.reports import Report, Table
from projections.views import Views, catch_up

# --- the app --------------------------------------------------------------------------------


_NOT_TEXT = re.compile(r"[\x00\ud800-\udfff]")


def printable(text: str) -> str:
    """An error message as people see it: every invisible character (controls, bidi overrides,
    zero-width, lone surrogates) escaped as in tables (``output.visible``), since an error echoes
    what it refuses; only the message's own line breaks stay."""
    return "\n".join(visible(line) for line in text.split("\n"))


class LedgerGroup(click.Group):
    """Turns every LedgerError into a message and its exit code; lists commands in a fixed order."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Bytes that are not UTF-8 reach Python as lone surrogates (PEP 383), and a NUL can only
        # come from a caller in Python: refuse them here, once, not deep inside a command.
        for arg in args:
            if _NOT_TEXT.search(arg):
                raise click.UsageError(f"an argument is not valid UTF-8 text: '{printable(arg)}'", ctx)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LedgerError as e:
            click.echo(f"Error: {printable(str(e))}", err=True)
            ctx.exit(e.exit_code)
        except (PersistenceError, sqlite3.Error) as e:  # the database failed under a command
            click.echo(f"Error: the database refused the operation: {printable(str(e))}", err=True)
            ctx.exit(StorageError.exit_code)
        except BrokenPipeError:  # `ledger log | head`
            sys.stderr.close()
            ctx.exit(0)


@click.group(cls=LedgerGroup)
@click.option(
    "--db",
    envvar=DB_ENV,
    metavar="PATH|URL",
    help=f"The ledger: a SQLite file (default under the user's data folder) or postgresql://… [env {DB_ENV}]",
)
@click.option(
    "--tz",
    envvar=localtime.TZ_ENV,
    metavar="ZONE",
    help=f"time zone of the default --as-of and of printed times [env {localtime.TZ_ENV}; "
    f"default {localtime.DEFAULT_TZ}]",
)
@click.option(
    "--lang",
    type=click.Choice(i18n.LANGUAGES),
    help=f"language of tables: zh (default) or en [env {i18n.LANG_ENV}, else LC_ALL/LANG]",
)
@click.version_option(package_name="medtech-ledger")
@click.pass_context
def cli(ctx: click.Context, db: str | None, tz: str | None, lang: str | None) -> None:
    """An audit ledger of medical-technology regulation in China.

    Every decision — a catalogue change, a filing, a privilege, a suspension, a certification —
    is recorded once and for ever; the views are rebuilt from the decisions alone.

    \b
    Examples:
      ledger --db demo.sqlite demo
      ledger --db demo.sqlite trail --institution 湘江示范医院 --findings-only
    """
    ctx.ensure_object(dict)
    ctx.obj["db"] = db
    localtime.set_zone(tz)
    i18n.set_language(lang)
    ctx.call_on_close(lambda: i18n.set_language(None))  # the next run in this process asks again


def _progress_reader(path: str, stack: ExitStack) -> tuple[Iterable[bytes], Callable[[int], None] | None]:
    """The lines of a decision file (``-`` for stdin), and a progress callback on a terminal."""
    if path == "-":
        return _bounded_lines(sys.stdin.buffer), None
    try:
        handle = stack.enter_context(open(path, "rb"))  # noqa: SIM115
    except OSError as e:
        msg = f"cannot read {path}: {e.strerror}"
        raise ConfigurationError(msg) from e
    except ValueError as e:  # a NUL in the name
        msg = f"cannot read {path!r}: {e}"
        raise ConfigurationError(msg) from None
    if not progress.on_terminal():
        return _bounded_lines(handle), None
    return _bounded_lines(handle), stack.enter_context(progress.bar(f"importing {path}", Path(path).stat().st_size))


def _bounded_lines(handle: IO[bytes]) -> Iterable[bytes]:
    """The lines of a file, none read further than the longest a decision may be: a file with no
    newline (or ``/dev/zero``) is refused at its first line, never read whole into memory."""
    while line := handle.readline(MAX_LINE_BYTES + 2):
        yield line


def import_files(app: LedgerApplication, paths: Sequence[str | Path], *, quiet: bool = False) -> list[ImportResult]:
    """Import decision files one transaction each, stopping at the first refused file; the views
    then catch up with whatever was recorded."""
    results = []
    with then_catch_up(app):
        for path in paths:
            results.append(_import_one(app, path, quiet=quiet))
    return results


@contextlib.contextmanager
def then_catch_up(app: LedgerApplication) -> Iterator[None]:
    """Catch the views up after a write, whether or not it succeeded. If it failed, its error is
    the one the user sees: a catch-up that fails too (the ledger busy) must not hide the cause."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(LedgerError):
            catch_up(app)
        raise
    catch_up(app)


def _import_one(app: LedgerApplication, path: str | Path, *, quiet: bool) -> ImportResult:
    with ExitStack() as stack:
        lines, progress = _progress_reader(str(path), stack)
        result = app.import_lines(lines, source="<stdin>" if str(path) == "-" else str(path), progress=progress)
    if not quiet:
        where = f" at positions {result.first_position}–{result.last_position}" if result.recorded else ""
        click.echo(
            f"{result.source}: {result.recorded} recorded{where}, {result.unchanged} already in the ledger", err=True
        )
    return result


def import_reference(app: LedgerApplication, paths: Sequence[Path]) -> None:
    """Import plugins' files whatever order the plugins loaded in: a file that names what another
    file introduces (a province's demo naming national technologies) is retried after the others."""
    pending = list(paths)
    with then_catch_up(app):
        while pending:
            deferred: list[tuple[Path, UnknownReference]] = []
            for path in pending:
                try:
                    _import_one(app, path, quiet=False)
                except UnknownReference as e:
                    deferred.append((path, e))
            if len(deferred) == len(pending):
                raise deferred[0][1]
            pending = [p for p, _ in deferred]


@cli.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True, dir_okay=False))
@click.option(
    "--check",
    is_flag=True,
    help="record nothing: list every bad line of every file (file, line, field, message); exit 3 if any",
)
@click.pass_context
def import_command(ctx: click.Context, files: tuple[str, ...], check: bool) -> None:
    """Record decision files (JSON Lines, docs/decision-format.md; - for stdin).

    Each file is recorded wholly or not at all; importing it again adds nothing.

    \b
    Examples:
      ledger import decisions.jsonl
      ledger import --check decisions.jsonl other.jsonl
    """
    if check:
        _check_files(ctx, files)
        return
    _refuse_copy(ctx)
    import_files(open_app(ctx, create=True), files)


def _check_files(ctx: click.Context, files: Sequence[str]) -> None:
    """``import --check``: the ledger (if there is one) is only read, its views not caught up."""
    from projections.filecheck import FileChecker

    known: Callable[[str, str], bool] = lambda kind, key: False  # noqa: E731 - no ledger: nothing known yet
    if location.ledger_exists(location.ledger_url(ctx.find_root().obj.get("db"))):
        known = lookup.Lookup(Views(open_app(ctx), catch_up=False)).holds
    checker = FileChecker(plugin_manager(), known)
    bad = 0
    for path in files:
        with ExitStack() as stack:
            lines, _ = _progress_reader(path, stack)
            for problem in checker.check("<stdin>" if path == "-" else path, lines):
                bad += 1
                located = DecisionError(problem.message, file=problem.file, line=problem.line, field=problem.field)
                click.echo(printable(str(located)))
    if bad:
        click.echo(f"{bad} bad line(s) in {len(files)} file(s); nothing recorded", err=True)
        ctx.exit(DecisionError.exit_code)
    click.echo(f"{len(files)} file(s) checked: no bad line; nothing recorded", err=True)


def _field_value(kind: str, name: str, raw: str) -> Any:
    """A ``--field`` value, read by the field's declared type: text stays text (a licence number
    of digits is a string), lists, objects and numbers are JSON."""
    spec = kind_specs().get(kind)
    declared = spec.by_name.get(name) if spec else None
    if declared is not None and (declared.type is str or _text_choices(declared.type)):
        return raw
    if declared is not None or raw[:1] in "[{":
        try:
            return json.loads(raw, parse_float=Decimal)
        except ValueError:
            return raw
        except RecursionError:
            raise MalformedDecision("malformed JSON: nested too deeply", file="<record>", field=name) from None
    return raw


def _text_choices(annotation: Any) -> bool:
    from typing import Literal, get_args, get_origin

    return get_origin(annotation) is Literal and all(isinstance(a, str) for a in get_args(annotation))


@cli.command("sign")
@click.argument("file", type=click.Path(allow_dash=True, dir_okay=False))
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="the authority's signer key file (`ledger keygen`)",
)
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-", help="default stdout")
def sign_command(file: str, key_file: str, output: IO[str]) -> None:
    """Sign every decision of a decision file with an authority's key (docs/reliability.md).

    Once an authority has registered its key (``authority.key_registered``), the ledger refuses
    decisions ``by`` it that are unsigned or wrongly signed.
    """
    from ledger import authority
    from ledger.integrity import load_signer_key

    signer = load_signer_key(key_file)
    with ExitStack() as stack:
        lines, _ = _progress_reader(file, stack)
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = parse_line(line)
            except DecisionError as e:
                raise e.located(file=file, line=lineno) from None
            output.write(authority.sign(record, signer).to_json() + "\n")


@cli.command("record")
@click.argument("kind")
@click.option("--id", "decision_id", required=True, help="the decision's id, chosen by whoever decided")
@click.option("--effective", required=True, help="YYYY-MM-DD on which it takes effect")
@click.option("--by", required=True, help="the authority or institution that decided")
@click.option("--basis", help="legal basis, e.g. MTM-2018#11")
@click.option("--note", help="free text kept with the decision")
@click.option("--sign", "key_file", type=click.Path(dir_okay=False), help="sign it with this signer key file")
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="NAME=VALUE",
    help="a field of the kind; lists and objects as JSON, e.g. materials='[\"备案表\"]'",
)
@click.pass_context
def record_command(
    ctx: click.Context,
    kind: str,
    decision_id: str,
    effective: str,
    by: str,
    basis: str | None,
    note: str | None,
    key_file: str | None,
    fields: tuple[str, ...],
) -> None:
    """Record one decision of KIND (e.g. filing.completed; `ledger kinds KIND` lists its fields).

    \b
    Example:
      ledger record use.resumed --id CS-2020-0007 --effective 2020-03-02 --by 长沙市卫生健康委员会
        --field institution=44860321X43010211A1001 --field technology=hunan:S14
    """
    _refuse_copy(ctx)
    obj: dict[str, Any] = {"id": decision_id, "kind": kind, "effective": effective, "by": by}
    if basis:
        obj["basis"] = basis
    if note:
        obj["note"] = note
    for item in fields:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise MalformedDecision(f"--field takes NAME=VALUE, got {item!r}", file="<record>")
        if name in obj:
            raise MalformedDecision("given twice", file="<record>", field=name)
        obj[name] = _field_value(kind, name, raw)
    try:
        record = from_json_dict(obj)
    except DecisionError as e:
        raise e.located(file="<record>") from None
    if key_file:
        from ledger import authority
        from ledger.integrity import load_signer_key

        record = authority.sign(record, load_signer_key(key_file))
    app = open_app(ctx, create=True)
    with then_catch_up(app):
        result = app.record(record)
    if result.recorded:
        click.echo(f"recorded {decision_id} at position {result.last_position}")
    else:
        click.echo(f"{decision_id} is already in the ledger with the same content")


def paging_options(f: F) -> F:
    """``--from-position`` and ``--limit``: a page of the log, by position (streamed either way)."""
    f = click.option("--limit", type=click.IntRange(min=1), metavar="N", help="at most N decisions")(f)
    return click.option(
        "--from-position",
        "from_position",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        metavar="N",
        help="start at log position N (the next page: the last position shown + 1)",
    )(f)


@cli.command("export")
@click.option(
    "-o", "--output", type=click.File("w", encoding="utf-8"), default="-", help="file to write (default stdout)"
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl"]),
    default="jsonl",
    show_default=True,
    help="JSON Lines: one decision a line, as imported",
)
@paging_options
@click.pass_context
def export_command(ctx: click.Context, output: IO[str], fmt: str, from_position: int, limit: int | None) -> None:
    """Write the log as a decision file that re-imports to the same ledger (streamed, page by page).

    \b
    Examples:
      ledger export -o all.jsonl
      ledger export --from-position 5001 --limit 1000
    """
    for record in queries.export(open_app(ctx), from_position=from_position, limit=limit):
        output.write(record.to_json() + "\n")


def _jurisdiction_names(code: str) -> list[str]:
    return queries.jurisdiction_names(code)


@cli.command("log")
@click.option(
    "--subject",
    type=lookup.Subject(),
    help="e.g. institution:PDY00001, use:PDY00001|hunan:S14, technology:national:G01 (names accepted)",
)
@click.option("--kind", "kinds", multiple=True, help="a kind of decision (repeatable)")
@click.option(
    "--jurisdiction",
    "--province",
    "jurisdiction",
    type=lookup.Named("province"),
    help="national, a province code (hunan) or name (湖南省, 湖南)",
)
@click.option("--from", "date_from", help="effective on or after YYYY-MM-DD")
@click.option("--to", "date_to", help="effective on or before YYYY-MM-DD")
@paging_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice([*FORMATS, "jsonl"]),
    default="table",
    show_default=True,
    help="table for people; json, jsonl (one decision a line) or csv for programs, streamed",
)
@click.pass_context
def log_command(
    ctx: click.Context,
    subject: str | None,
    kinds: tuple[str, ...],
    jurisdiction: str | None,
    date_from: str | None,
    date_to: str | None,
    from_position: int,
    limit: int | None,
    fmt: str,
) -> None:
    """The decisions in record order, filtered.

    \b
    Example:
      ledger log --jurisdiction 湖南 --kind filing.completed --from 2019-01-01
    """
    rows = queries.log_rows(
        open_app(ctx),
        subject=subject,
        kinds=kinds,
        jurisdiction=jurisdiction,
        date_from=option_day(date_from, "--from"),
        date_to=option_day(date_to, "--to"),
        from_position=from_position,
        limit=limit,
    )
    emit(rows, queries.LOG_COLUMNS, fmt, drop=queries.LOG_DROP)


@cli.command("show")
@click.argument("decision_id")
@format_option
@click.pass_context
def show_command(ctx: click.Context, decision_id: str, fmt: str) -> None:
    """One decision with its record time, position, and any corrections.

    \b
    Example:
      ledger show HN-2019-0021 --format json
    """
    shown = queries.show(open_app(ctx), decision_id)
    d = shown.decision
    if fmt == "json":
        click.echo(canonical.dumps(shown.to_json()))
        return
    if fmt == "csv":
        rows = shown.to_json()
        emit(rows, sorted({k for r in rows for k in r}, key=lambda k: (k.startswith("_"), k)), fmt)
        return
    out = [
        ("position", d.position),
        ("recorded at", localtime.shown(d.recorded_at)),
        ("subject", d.subject),
        ("version", d.version),
        *d.record.to_json_dict().items(),
    ]
    out = [(i18n.heading(str(k)), v) for k, v in out]
    width = max(display_width(str(k)) for k, _ in out)
    for key, value in out:
        click.echo(f"{key}{' ' * (width - display_width(str(key)))}  {shown_cell(value)}")
    for c in d.corrections:
        click.echo(
            f"\n{c.record.kind} {visible(c.record.id)} (position {c.position}, effective {c.record.effective}): "
            f"{visible(canonical.dumps(c.record.fields.get('fields') or c.record.fields.get('reason')))}"
        )


# --- views ----------------------------------------------------------------------------------


@cli.command("catalog")
@click.option(
    "--province",
    type=lookup.Named("province"),
    help="a province code (hunan); national entries only when omitted",
)
@time_options
@format_option
@click.pass_context
def catalog_command(
    ctx: click.Context, province: str | None, as_of: str | None, known_at: str | None, fmt: str
) -> None:
    """The catalogue in force: national prohibited and restricted, plus the province's own.

    \b
    Example:
      ledger catalog --province 湖南 --as-of 2020-01-01
    """
    section = queries.catalog(open_views(ctx), province, as_of=option_day(as_of, "--as-of"), known_at=known_at)
    emit(section.rows, section.columns, fmt, drop=section.drop)


def section_option(*names: str) -> Callable[[F], F]:
    """``--section NAME``: one of the command's tables; a CSV of several needs it."""
    return click.option(
        "--section",
        metavar="NAME",
        help=f"only this table ({', '.join(names)}); --format csv needs it when several would print",
    )


@cli.command("disclosure")
@click.option("--province", type=lookup.Named("province"), help="a province code (hunan)")
@click.option("--institution", type=lookup.Named("institution"), help="one institution's 院务公开 (MTM-2018#24)")
@time_options
@format_option
@section_option("filings", "training_bases", "trainees", "privileges", "cases")
@click.pass_context
def disclosure_command(
    ctx: click.Context,
    province: str | None,
    institution: str | None,
    as_of: str | None,
    known_at: str | None,
    fmt: str,
    section: str | None,
) -> None:
    """What must be public: filings per restricted technology, suspensions, training bases, trainees
    (MTM-2018#30, #40); per institution its technologies, surgical grades and cases (#24).

    \b
    Example:
      ledger disclosure --province hunan --format json
    """
    result = queries.disclosure(
        open_views(ctx), province, institution, as_of=option_day(as_of, "--as-of"), known_at=known_at
    )
    _emit_sections(result, fmt, section)


def _emit_sections(result: queries.Sections, fmt: str, section: str | None = None) -> None:
    """Several tables: one JSON object by section name, or each shown section in turn. A CSV
    holds one table (one header row): several would need ``--section`` to choose."""
    if section is not None:
        if section not in result.names:
            msg = f"no section {section!r} here; sections: {', '.join(result.names)}"
            raise click.BadParameter(msg, param_hint="--section")
        result = result.only(section)
    elif fmt == "csv" and sum(s.shown for s in result.sections) > 1:
        shown = ", ".join(s.name for s in result.sections if s.shown)
        msg = f"--format csv writes one table: choose it with --section ({shown})"
        raise click.UsageError(msg)
    if fmt == "json":
        click.echo(canonical.dumps(result.to_json()))
        return
    for i, table in enumerate(result.sections):
        if not table.shown:
            continue
        if fmt == "table":
            click.echo(("\n" if i else "") + f"{i18n.section(table.title)}:")
        emit(table.rows, table.columns, fmt, drop=table.drop)


@cli.command("trail")
@click.option("--province", type=lookup.Named("province"), help="a province code (hunan)")
@click.option("--institution", type=lookup.Named("institution"), help="a licence number or name")
@click.option("--physician", type=lookup.Named("physician"), help="a practising licence number or name")
@click.option("--technology", type=lookup.Named("technology"), help="<catalog>:<code>, e.g. hunan:S14")
@click.option("--findings-only", is_flag=True, help="only the findings")
@time_options
@format_option
@section_option("entries", "findings")
@click.pass_context
def trail_command(
    ctx: click.Context,
    province: str | None,
    institution: str | None,
    physician: str | None,
    technology: str | None,
    findings_only: bool,
    as_of: str | None,
    known_at: str | None,
    fmt: str,
    section: str | None = None,
) -> None:
    """Every decision about a subject in effective-date order with its basis, and the findings.

    \b
    Example:
      ledger trail --institution 湘江示范医院 --findings-only
    """
    result = queries.trail(
        open_views(ctx),
        province=province,
        institution=institution,
        physician=physician,
        technology=technology,
        findings_only=findings_only,
        as_of=option_day(as_of, "--as-of"),
        known_at=known_at,
    )
    _emit_sections(result, fmt, section)


@cli.command("rebuild")
@click.argument("names", nargs=-1)
@click.pass_context
def rebuild_command(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Rebuild projections (all, or NAMES) from the first record.

    \b
    Example:
      ledger rebuild view_filings
    """
    views = Views(open_app(ctx), catch_up=False)
    unknown = sorted(set(names) - set(views.runner.projections))
    if unknown:
        raise click.BadParameter(f"no projection {', '.join(unknown)}; known: {', '.join(views.runner.projections)}")
    with progress.pages(views.runner, "rebuilding", views.app.position()):
        read = views.runner.rebuild(names or None)
    click.echo(f"rebuilt {', '.join(names or views.runner.projections)} from {read} records", err=True)


@cli.command("project")
@click.option("--follow", is_flag=True, help="keep catching up as decisions are recorded (Ctrl-C to stop)")
@click.option("--poll", type=float, default=0.5, show_default=True, help="seconds between looks at the log")
@click.pass_context
def project_command(ctx: click.Context, follow: bool, poll: float) -> None:
    """Catch every projection up with the log; with --follow, run as a projection process.

    \b
    Example:
      ledger project --follow
    """
    views = Views(open_app(ctx), catch_up=False)
    behind = views.app.position() - min(views.runner.positions().values(), default=0)
    with progress.pages(views.runner, "catching up", behind):
        read = views.runner.catch_up()
    click.echo(f"caught up: {read} records applied; positions {views.runner.positions()}", err=True)
    if follow:
        with contextlib.suppress(KeyboardInterrupt):
            views.runner.follow(poll=poll)


# --- plugins and set-up ---------------------------------------------------------------------


@cli.command("kinds")
@click.argument("kind", required=False)
@format_option
def kinds_command(kind: str | None, fmt: str) -> None:
    """The kinds of decision and each one's fields with their types (docs/decision-format.md).

    \b
    Examples:
      ledger kinds
      ledger kinds filing.submitted --format json
    """
    from projections.kinds import COMMON, KindField, kind_fields

    kinds = kind_fields()
    if kind is not None and kind not in kinds:
        near = difflib.get_close_matches(kind, list(kinds), n=3)
        raise NotFound(f"no kind {kind!r}" + (f"; did you mean {' or '.join(near)}?" if near else " (`ledger kinds`)"))
    chosen = {kind: kinds[kind]} if kind else kinds
    rows = [
        {"kind": k, "field": f.name, "type": f.type, "required": "yes" if f.required else "no"}
        for k, fields in chosen.items()
        for f in ([KindField(*c) for c in COMMON] if kind else []) + fields
    ]
    emit(rows, ("kind", "field", "type", "required"), fmt)


def _search_options(f: F) -> F:
    """What ``institutions`` and ``physicians`` are searched by, besides a name: the place, the
    grade, the day (``time_options``) and the output (``format_option``)."""
    for option in (
        format_option,
        time_options,
        click.option("--level", help="the institution's grade: 三级, 三 or 3"),
        click.option("--city", type=lookup.Named("city"), help="the institution's city (长沙 or 长沙市) or district"),
        click.option("--province", type=lookup.Named("province"), help="a province code (hunan) or name (湖南)"),
    ):
        f = option(f)
    return f


@cli.command("institutions")
@click.option("--name", help="a part of the name (湘江) or the licence number")
@_search_options
@click.pass_context
def institutions_command(ctx: click.Context, /, as_of: str | None, fmt: str, **search: str | None) -> None:
    """The institutions registered on the day, searched by name, city and level.

    \b
    Example:
      ledger institutions --city 长沙 --level 3
    """
    found = lookup.institutions(open_views(ctx), as_of=option_day(as_of, "--as-of"), **search)
    emit(
        [vars(i) for i in found],
        ("institution", "name", "province", "city", "category", "level"),
        fmt,
        table="institutions",
    )


@cli.command("physicians")
@click.option("--name", help="a part of the name (欧阳) or the practising licence number")
@click.option("--institution", type=lookup.Named("institution"), help="a licence number or name")
@_search_options
@click.pass_context
def physicians_command(ctx: click.Context, /, as_of: str | None, fmt: str, **search: str | None) -> None:
    """The physicians registered on the day at an institution, searched by name, institution, city
    and level.

    \b
    Example:
      ledger physicians --institution 湘江示范医院
    """
    found = lookup.physicians(open_views(ctx), as_of=option_day(as_of, "--as-of"), **search)
    emit(
        [vars(p) for p in found],
        ("physician", "name", "title", "institution_name", "city", "level"),
        fmt,
        table="physicians",
    )


@cli.command("plugins")
@format_option
def plugins_command(fmt: str) -> None:
    """Every plugin (built-in and installed), its version, the hooks it implements and what it adds.

    \b
    Example:
      ledger plugins --format json
    """
    rows = queries.plugins(plugin_manager())
    if fmt == "table":
        for row in rows:
            row["contributes"] = "; ".join(f"{k}: {', '.join(v)}" for k, v in row["contributes"].items() if v)
    emit(rows, ("name", "version", "distribution", "hooks", "contributes"), fmt)


def _hook_files(hook: Callable[..., Any]) -> list[Path]:
    return sorted({Path(p) for contributed in hook() for p in contributed or ()}, key=str)


@cli.command("init")
@click.pass_context
def init_command(ctx: click.Context) -> None:
    """Create the ledger (if new) and record every plugin's reference catalogues."""
    app = open_app(ctx, create=True)
    import_reference(app, _hook_files(plugin_manager().hook.ledger_reference_data))
    click.echo(
        f"ledger ready: {redact(str(ctx.find_root().obj.get('db') or database_env().get('SQLITE_DBNAME')))} "
        f"at position {app.position()}",
        err=True,
    )


@cli.command("demo")
@click.option("--institution", help="the institution whose trail to print (default: the first in Hunan's demo)")
@click.pass_context
def demo_command(ctx: click.Context, institution: str | None) -> None:
    """Build a ledger from the shipped reference history, then show Hunan's catalogue and a trail."""
    app = open_app(ctx, create=True)
    pm = plugin_manager()
    import_reference(app, _hook_files(pm.hook.ledger_reference_data))
    import_reference(app, _hook_files(pm.hook.ledger_demo_data))
    click.echo(f"\nThe catalogue in force in Hunan today ({localtime.today()}):\n")
    ctx.invoke(catalog_command, province="hunan", as_of=str(localtime.today()), known_at=None, fmt="table")
    if institution is None:
        hunan = _jurisdiction_names("hunan")
        first = app.records(kinds=["institution.registered"], jurisdictions=hunan, limit=1)
        institution = next((d.record.fields["institution"] for d in first), None)
    if institution:
        click.echo(f"\nThe inspection trail of {institution}:\n")
        ctx.invoke(
            trail_command,
            province=None,
            institution=institution,
            physician=None,
            technology=None,
            findings_only=False,
            as_of=str(localtime.today()),
            known_at=None,
            fmt="table",
        )
    click.echo(f"\n{app.position()} decisions in the ledger. Try: ledger log --jurisdiction hunan | less", err=True)


# --- tamper evidence: keys, checkpoints, verify, offline proofs -----------------------------
# BEGIN integrity commands: everything from here to `def main()` is ledger.integrity's CLI.


def _write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` (``-`` for stdout) or say why not, without a traceback."""
    if path == "-":
        click.echo(text, nl=False)
        return
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as e:
        msg = f"cannot write {path}: {e.strerror}"
        raise ConfigurationError(msg) from e


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        msg = f"cannot read {path}: {e}"
        raise ConfigurationError(msg) from e


_KEY_HELP = "signer key file [env LEDGER_KEY; default: checkpoint.key under the user's data folder]"


@cli.command("keygen")
@click.option("--name", default="medtech-ledger", show_default=True, help="the key's name, shown in signature lines")
@click.option(
    "-o",
    "--output",
    "key_file",
    type=click.Path(dir_okay=False),
    help="signer key file to create (mode 0600; default under the user's data folder); the verifier key goes "
    "to FILE.pub",
)
def keygen_command(name: str, key_file: str | None) -> None:
    """Make an Ed25519 key pair for signing checkpoints; prints the verifier (public) key only.

    \b
    Example:
      ledger keygen --name 湖南省卫生健康委员会 -o hunan.key
    """
    path = Path(key_file) if key_file else integrity.default_key_path()
    vkey = integrity.keygen(path, name)
    click.echo(f"signer key written to {path} (mode 0600): keep it secret, keep a backup", err=True)
    click.echo(f"verifier key written to {path}.pub: publish it to whoever checks the ledger", err=True)
    click.echo(vkey)


@cli.command("checkpoint")
@click.option("--key", "key_file", type=click.Path(dir_okay=False), envvar="LEDGER_KEY", help=_KEY_HELP)
@click.option("--origin", envvar="LEDGER_ORIGIN", help="the log's origin line (default: the one it last signed)")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="also write the signed note to FILE")
@click.option("--rotate-key", is_flag=True, help="sign with another key than the last checkpoint's (key rotation)")
@click.option("--new-origin", is_flag=True, help="sign under another origin than the last checkpoint's")
@click.option("--witness", "witnesses", multiple=True, metavar="NAME=VKEY@URL", help="ask this witness to cosign")
@click.option(
    "--policy", "policy_file", type=click.Path(dir_okay=False), help="ask the policy's witnesses; need its quorum"
)
@click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(min=0.1), help="seconds per witness")
@click.pass_context
def checkpoint_command(
    ctx: click.Context,
    key_file: str | None,
    origin: str | None,
    output: str | None,
    rotate_key: bool,
    new_origin: bool,
    witnesses: tuple[str, ...] = (),
    policy_file: str | None = None,
    timeout: float = 10.0,
) -> None:
    """Bring the Merkle tree up to date and sign a checkpoint (C2SP tlog-checkpoint) of it.

    Refuses to sign a tree that is inconsistent with a checkpoint signed before, and, unless told
    so, with another key or origin than the last checkpoint's (docs/reliability.md, key rotation).
    Recomputes the decision index rows of the records it newly covers, refuses if one disagrees
    with its event, and signs their digest (a decision-index line) for `verify --key` to check.

    \b
    Example:
      ledger checkpoint --key authority.key -o checkpoint.txt
    """
    path = key_file or integrity.default_key_path()
    key = integrity.load_signer_key(path)
    app = open_app(ctx)
    if key_file is None:
        click.echo(f"signing with the default key {path} ({key.name}+{key.key_id:08x})", err=True)
    stored = integrity.stored_checkpoints(app)
    last = queries.signed_by(stored[-1].note) if stored else ""
    note = integrity.checkpoint(app, key, origin, rotate_key=rotate_key, new_origin=new_origin)
    note = _cosign(ctx, witnesses, policy_file, timeout) or note
    if last and f"{key.name}+{key.key_id:08x}" not in last.split(", "):
        click.echo(
            f"Warning: signed with {key.name}+{key.key_id:08x}, not the key that signed checkpoint "
            f"#{stored[-1].seq} ({last}): verifiers need the new verifier key",
            err=True,
        )
    if output:
        _write_text(output, note)
    click.echo(note, nl=False)


@cli.command("checkpoints")
@format_option
@click.pass_context
def checkpoints_command(ctx: click.Context, fmt: str) -> None:
    """The checkpoints the ledger signed, oldest first (json and csv include the signed notes)."""
    columns = queries.CHECKPOINT_COLUMNS
    emit(queries.checkpoints(open_app(ctx)), columns if fmt == "table" else (*columns, "note"), fmt)


@cli.command("verify")
@click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="a signed checkpoint kept outside the ledger, to check storage against too (repeatable)",
)
@click.option(
    "--key",
    "key_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="verifier key file (.pub): every checkpoint must then be signed by one of them (repeatable)",
)
@click.option(
    "--strict",
    is_flag=True,
    help="also fail unless every record is covered by a checkpoint whose signature --key verified",
)
@click.option("--views", is_flag=True, help="also compare every view and its tracked position with a rebuild")
@click.option(
    "--full", is_flag=True, help="recompute every decision index row from its event, even under a signed index digest"
)
@click.option(
    "--policy", "policy_file", type=click.Path(dir_okay=False), help="the latest checkpoint must reach its quorum"
)
@click.pass_context
def verify_command(
    ctx: click.Context,
    checkpoint_files: tuple[str, ...],
    key_files: tuple[str, ...],
    strict: bool,
    views: bool,
    full: bool,
    policy_file: str | None = None,
) -> None:
    """Recompute the Merkle tree and the decision index from storage and check them against
    every signed checkpoint and the events; with --views, every view against a rebuild.

    Exits non-zero naming the first position where storage and the signed history disagree, and
    says what no verified signature covers (a failure with --strict). With --key, the index rows a
    verified checkpoint signed a digest of are checked against it; --full recomputes them all.

    \b
    Example:
      ledger verify --key checkpoint.key.pub --views
    """
    keys = integrity.load_verifier_keys(key_files) + (_proof_keys((), policy_file) if policy_file else [])
    notes = [_read_text(path) for path in checkpoint_files] + following.verified_notes(open_app(ctx))
    with progress.ticker("verifying"):
        report = integrity.verify(open_app(ctx), notes, keys, full=full)
    report.check(strict=strict)  # a disagreement first, on its own; under --strict, what is not covered too
    _quorum(policy_file, cosigning.published_note(open_app(ctx)))
    for warning in report.warnings:
        click.echo(f"Warning: {printable(warning)}", err=True)
    click.echo(report.summary())
    if views:
        from projections.audit import verify_views

        with progress.ticker("comparing the views with a rebuild"):
            views_report = verify_views(open_app(ctx))
        views_report.check()
        click.echo(views_report.summary())


@cli.command("prove")
@click.argument("decision_id")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True), help="bundle file")
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False),
    help="signer key, to sign a checkpoint if none covers the decision yet",
)
@click.pass_context
def prove_command(ctx: click.Context, decision_id: str, output: str, key_file: str | None) -> None:
    """Write an offline proof (C2SP tlog-proof and the decision) that a decision is in the signed log.

    \b
    Example:
      ledger prove HN-2019-0021 -o proof.json --key checkpoint.key
    """
    key = integrity.load_signer_key(key_file) if key_file else None
    bundle = integrity.prove(open_app(ctx), decision_id, key)
    _write_text(output, integrity.dump_bundle(bundle))
    click.echo(
        f"proof of {decision_id} (position {bundle['position']}, leaf {bundle['leaf_index']} of "
        f"{bundle['tree_size']}) written to {output}",
        err=True,
    )


@cli.command("verify-proof")
@click.argument("proof_file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--key",
    "key_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="verifier key file (.pub) of the ledger (repeatable; or --policy)",
)
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), help="the checkpoint must reach its quorum")
def verify_proof_command(proof_file: str, key_files: tuple[str, ...], policy_file: str | None = None) -> None:
    """Check a proof bundle with no database at all: signature, leaf, inclusion, decision.

    Exit codes: 0 the proof verifies; 5 the file or a key cannot be read; 9 the proof does not
    verify (the leaf is not in the signed tree, or the decision, position, subject or time shown
    is not the recorded one); 10 the checkpoint's signature does not verify; 11 not a proof bundle
    (not JSON, a key twice, nested too deeply, a field missing or of the wrong type); 13 with
    --policy, the checkpoint lacks its quorum of witnesses.

    \b
    Example:
      ledger verify-proof proof.json --key checkpoint.key.pub
    """
    keys, raw = _proof_keys(key_files, policy_file), _read_bundle(proof_file)
    report = integrity.verify_proof(raw, keys)
    report.check()
    _quorum(policy_file, str(integrity.load_bundle(raw)["checkpoint"]))
    click.echo(f"OK: {report.summary()}")


def _read_bundle(path: str) -> bytes:
    """The bytes of a proof file (``-`` for stdin), at most one more than a bundle may have, so
    that ``load_bundle`` refuses a larger one without it being read whole."""
    limit = integrity.MAX_BUNDLE_BYTES + 1
    if path == "-":
        return sys.stdin.buffer.read(limit)
    try:
        with Path(path).open("rb") as f:
            return f.read(limit)
    except OSError as e:
        msg = f"cannot read {path}: {e.strerror or e}"
        raise ConfigurationError(msg) from e


# END integrity commands
# ------------------------------------------------------------------------------------------


# --- publishing: the public site, and reports as spreadsheets and plots ---------------------
# BEGIN publish commands: everything from here to the END line is projections.publish's CLI.


REPORT_FORMATS = ("csv", "xlsx", *plots.PLOT_FORMATS)
_OWN_REPORT_OPTIONS = frozenset({"format", "output", "o", "help", "known-at", "filled-by"})


@cli.command("publish")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="where the site appears: a link to a complete new version, swapped in atomically (absent, an "
    "empty folder, or an earlier site; anything else is refused)",
)
@click.option(
    "--province",
    type=lookup.Named("province"),
    help="one jurisdiction only: a code (hunan), a name (湖南省) or national; default all",
)
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="publish what was in force that day (default: today)")
@click.option(
    "--key",
    "key_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="the log's verifier key (.pub): pages then carry their decisions' inclusion proofs, checked in the "
    "reader's browser",
)
@click.option(
    "--policy",
    type=click.Path(dir_okay=False),
    help="a trust policy (log key, witnesses, quorum): like --key, and the browser also checks the quorum",
)
@click.pass_context
def publish_command(
    ctx: click.Context,
    out_dir: str,
    province: str | None,
    as_of: str | None,
    key_files: tuple[str, ...],
    policy: str | None,
) -> None:
    """Write the public disclosure lists as a static web site (MTM-2018#24, #30, #40; CQ-2017 公示).

    Per province: the catalogue in force, the institutions filed per restricted technology,
    suspended and stopped uses, training bases and certified trainees; per institution its
    院务公开 page. Lists can be searched and filtered by technology, city and institution name
    (a small script served with the site), and each technology has a stable anchor by its code
    (filings.html#hunan-S14). Pages name physicians, never their licence numbers, and publish no
    case reference. Each page is stamped with the ledger position, the as-of date and the latest
    signed checkpoint; the same ledger and --as-of give the same bytes. With --key (the log's
    verifier key) or --policy (log key, witnesses, quorum), the pages of institutions and filings
    carry their decisions' inclusion proofs, checked in the reader's browser by proofs.js.

    The site is written into a new folder beside --out and swapped in whole (--out is a link
    to it); the previous version is removed, so pages of subjects that left the lists vanish.
    See docs/publishing.md.
    """
    views = open_views(ctx)
    day = option_day(as_of, "--as-of") or localtime.today()
    trust = publish.trust_from(policy, key_files)
    with progress.ticker("publishing"):
        written = publish.publish(views, Path(out_dir), province=province, as_of=day, trust=trust)
    _write_log_beside(ctx, out_dir)
    stamp = publish.read_stamp(views.app, day)
    click.echo(
        f"{len(written)} files written to {out_dir} (ledger position {stamp.position}, as of {day}); "
        f"open {Path(out_dir) / 'index.html'}",
        err=True,
    )
    if stamp.checkpoint is None:
        click.echo("no signed checkpoint yet: run `ledger checkpoint`, then publish again to stamp it", err=True)
    elif not stamp.covers:
        click.echo(
            f"checkpoint #{stamp.checkpoint.seq} covers {stamp.checkpoint.size} records, not all that were "
            "published: run `ledger checkpoint`, then publish again",
            err=True,
        )


def _write_report_csv(table: Table, out: IO[str]) -> None:
    """The main table as CSV: the form's column headings, then the rows, formulas neutralised."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([safe_csv(c.name) for c in table.columns])
    for row in table.rows:
        writer.writerow([safe_csv(cell_text(row.get(c.key))) for c in table.columns])


def _write_bytes(target: str, data: bytes) -> None:
    if target == "-":
        sys.stdout.buffer.write(data)
        return
    try:
        Path(target).write_bytes(data)
    except OSError as e:
        msg = f"cannot write {target}: {e.strerror}"
        raise ConfigurationError(msg) from e


def _run_report(
    ctx: click.Context,
    report: Report,
    options: dict[str, str | None],
    fmt: str | None,
    output: str | None,
    filled_by: str | None = None,
) -> None:
    suffix = Path(output).suffix.lower().lstrip(".") if output and output != "-" else ""
    fmt = fmt or (suffix if suffix in REPORT_FORMATS else "csv")
    if fmt in plots.PLOT_FORMATS and report.name not in plots.PLOTTABLE:
        raise click.UsageError(
            f"{report.name} is a table: --format csv or xlsx (plots: {', '.join(sorted(plots.PLOTTABLE))})", ctx
        )
    views = open_views(ctx)
    # Checked here, so a typo is an error before any report reads the views as of it.
    position = min(views.position_at(options.get("known-at")), views.app.position())
    table = report.build(views, options)
    if fmt == "csv":
        if output in (None, "-"):
            _write_report_csv(table, sys.stdout)
            return
        assert output is not None
        try:
            # A BOM, so that a spreadsheet opening the file reads the Chinese as UTF-8.
            with open(output, "w", encoding="utf-8-sig", newline="") as handle:
                _write_report_csv(table, handle)
        except OSError as e:
            msg = f"cannot write {output}: {e.strerror}"
            raise ConfigurationError(msg) from e
    else:
        target = output or f"{report.name}.{fmt}"
        if fmt == "xlsx":
            buffer = io.BytesIO()
            publish.write_xlsx(table, buffer, filled_by=filled_by, notes=(f"本表据账本前 {position} 条记录生成。",))
            _write_bytes(target, buffer.getvalue())
        else:
            _write_bytes(target, plots.render(table, fmt, fallback_title=report.name))
        if target == "-":
            return
        output = target
    click.echo(f"{report.name}: {len(table.rows)} rows written to {output} ({fmt})", err=True)


def _report_command(report: Report) -> click.Command:
    """A command for one report: its ``Option``s become ``--name VALUE`` options."""
    params: list[click.Parameter] = []
    dests: dict[str, str] = {}
    for i, option in enumerate(report.options):
        if option.name in _OWN_REPORT_OPTIONS:
            raise PluginError(f"report {report.name!r}: its option --{option.name} clashes with `ledger report`'s own")
        dest = f"report_option_{i}"
        dests[dest] = option.name
        extra: dict[str, Any] = {} if option.default is None else {"default": option.default, "show_default": True}
        params.append(
            click.Option(
                [f"--{option.name}", dest],
                type=lookup.option_type(option.name),
                required=option.required,
                help=option.help,
                metavar="VALUE",
                **extra,
            )
        )
    formats = REPORT_FORMATS if report.name in plots.PLOTTABLE else ("csv", "xlsx")
    params.append(
        click.Option(
            ["--known-at", "known_at"],
            metavar="POSITION|TIMESTAMP",
            help="as the ledger knew it then: a log position or an ISO timestamp (default: everything recorded)",
        )
    )
    params.append(
        click.Option(["--filled-by", "filled_by"], metavar="NAME", help="填报人: the name written on the form (xlsx)")
    )
    params.append(
        click.Option(
            ["--format", "fmt"],
            type=click.Choice(formats),
            help="csv (programs; the main table), xlsx (the official form's layout, one sheet per part)"
            + (", png or svg (a plot)" if report.name in plots.PLOTTABLE else "")
            + "; default: from -o's suffix, else csv",
        )
    )
    params.append(
        click.Option(
            ["-o", "--output"],
            type=click.Path(dir_okay=False, allow_dash=True),
            help="file to write (- for stdout); default: stdout for csv, NAME.FORMAT otherwise",
        )
    )

    def run(
        fmt: str | None, output: str | None, known_at: str | None, filled_by: str | None, **values: str | None
    ) -> None:
        options = {dests[key]: value for key, value in values.items()}
        options["known-at"] = known_at
        _run_report(click.get_current_context(), report, options, fmt, output, filled_by)

    text = report.title + (f" ({report.article})" if report.article else "")
    return click.Command(report.name, callback=run, params=params, help=text, short_help=report.title)


class ReportGroup(click.Group):
    """``ledger report NAME``: one command per report, built from its ``Report`` when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(queries.reports(plugin_manager()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        report = queries.reports(plugin_manager()).get(cmd_name)
        return _report_command(report) if report else None

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        command = self.get_command(ctx, name)
        if command is None:
            known = ", ".join(self.list_commands(ctx)) or "none"
            raise click.UsageError(f"no report {name!r}; known reports: {known} (ledger report --list)", ctx)
        return name, command, args[1:]


@cli.group("report", cls=ReportGroup, invoke_without_command=True)
@click.option("--list", "list_reports", is_flag=True, help="list the reports with their options")
@click.pass_context
def report_group(ctx: click.Context, list_reports: bool) -> None:
    """Write a report as CSV or XLSX (the official form's layout), or plot it (png|svg).

    `ledger report --list` shows every report (built-in and plugins'); each report's own
    options follow its name, e.g. `ledger report hunan-filing-summary --half 2019H1 --format xlsx
    -o summary.xlsx --filled-by 王晓梅` or `ledger report filings-over-time --province hunan --format
    png`. Every report takes --known-at (as the ledger stood then, e.g. to reprint a form as
    first filed); xlsx sheets print on A4 landscape, one page wide, with the form's 注.
    """
    if ctx.invoked_subcommand is not None and not list_reports:
        return
    rows = [
        {
            "name": r.name,
            "options": ", ".join(f"--{o.name}" + (" (required)" if o.required else "") for o in r.options),
            "formats": "|".join(REPORT_FORMATS if r.name in plots.PLOTTABLE else ("csv", "xlsx")),
            "article": r.article,
            "title": r.title,
        }
        for r in queries.reports(plugin_manager()).values()
    ]
    emit(rows, ("name", "options", "formats", "article", "title"), "table")
    ctx.exit(0)


# END publish commands
# ------------------------------------------------------------------------------------------


# --- the read API (docs/api.md) ----------------------------------------------------------


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="port to listen on")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="server processes")
@click.option(
    "--tiles",
    type=click.Path(file_okay=False, exists=True),
    help="a folder `ledger tiles` writes, also served under /tlog/ (docs/transparency.md)",
)
@click.pass_context
def serve_command(ctx: click.Context, host: str, port: int, workers: int, tiles: str | None) -> None:
    """Serve the views, the log and the proofs as a read-only HTTP/JSON API (OpenAPI at
    /openapi.json, a page at /docs). Needs the serve extra; views are caught up by
    `ledger project --follow`, not by requests.

    \b
    Example:
      ledger serve --port 8000 --tiles /srv/ledger-log
    """
    from projections.api.server import run

    click.echo(
        f"serving {redact(str(ctx.find_root().obj.get('db') or 'the default ledger'))} read-only "
        f"on http://{host}:{port}/ (Ctrl-C to stop)",
        err=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        run(ctx.find_root().obj.get("db"), host, port, workers, tiles)


# --- transparency: the log as tlog-tiles, following another ledger, witnesses ---------------
# BEGIN transparency commands: everything from here to the END line is ledger.follow's,
# ledger.cosigning's and ledger.integrity.tiles_out's CLI (docs/transparency.md).


def _refuse_copy(ctx: click.Context) -> None:
    """``import`` and ``record`` into a followed copy would fork it from the log it follows."""
    following.refuse_if_followed(open_app(ctx, create=True))


def _write_log_beside(ctx: click.Context, out_dir: str) -> None:
    """``publish`` also writes the log's tiles into ``<out>.log``, a stable folder beside the site."""
    app = open_app(ctx)
    if integrity.stored_checkpoints(app):
        folder = Path(out_dir).with_name(Path(out_dir).name + ".log")
        done = tiles_out.write_tiles(app, folder)
        click.echo(f"log of {done.size} records published as tiles in {folder}", err=True)


@cli.command("tiles")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="folder of the tiles")
@click.pass_context
def tiles_command(ctx: click.Context, out_dir: str) -> None:
    """Write the log of the latest checkpoint as C2SP tlog-tiles into a folder (incremental).

    The checkpoint file is written last: a reader never sees a checkpoint whose tiles are missing.
    Entry bundles hold whole records, personal data included: serve them only to those entitled
    (docs/transparency.md).

    \b
    Example:
      ledger tiles --out /srv/ledger-log
    """
    done = tiles_out.write_tiles(open_app(ctx), out_dir)
    click.echo(
        f"{done.tiles} hash tiles and {done.bundles} entry bundles written to {out_dir} "
        f"(size {done.old_size} -> {done.size})",
        err=True,
    )


def _trust(key_files: Sequence[str], policy_file: str | None) -> following.Trust:
    keys = integrity.load_verifier_keys(key_files) if key_files else []
    return following.Trust(keys, load_policy(policy_file) if policy_file else None)


@cli.command("follow")
@click.argument("source")
@click.option(
    "--key", "key_files", multiple=True, type=click.Path(dir_okay=False), help="the log's verifier key (.pub)"
)
@click.option(
    "--policy", "policy_file", type=click.Path(dir_okay=False), help="trust policy: log keys, witnesses, quorum"
)
@click.option("--evidence", "evidence_dir", type=click.Path(file_okay=False), help="also write fork evidence here")
@click.option("--poll", type=click.FloatRange(min=0.1), help="keep following, looking every SECONDS (Ctrl-C to stop)")
@click.pass_context
def follow_command(
    ctx: click.Context,
    source: str,
    key_files: tuple[str, ...],
    policy_file: str | None,
    evidence_dir: str | None,
    poll: float | None,
) -> None:
    """Keep a verified, read-only copy of a ledger published as tiles (a URL or a folder).

    \b
    Example:
      ledger --db hunan-copy.sqlite follow https://ledger.example/national.log --key national.pub

    Exit codes: 0 up to date; 5 no key or policy, or a ledger of its own; 9 the tiles do not match
    the signed checkpoint; 10 the checkpoint is not signed by the key; 12 the log contradicts what
    it showed before (the evidence is kept; see docs/transparency.md); 13 the checkpoint lacks the
    policy's quorum of witnesses.
    """
    trust = _trust(key_files, policy_file)
    app = open_app(ctx, create=True)
    while True:
        try:
            done = following.follow(app, source, trust, evidence_dir=evidence_dir)
        except TileError as e:
            if poll is None:
                raise
            click.echo(f"Warning: {printable(str(e))}; trying again", err=True)
        else:
            cosigned = f", cosigned by {', '.join(done.witnesses)}" if done.witnesses else ""
            click.echo(f"{done.origin}: {done.size} records verified ({done.stored} new){cosigned}")
        if poll is None:
            return
        try:
            time.sleep(poll)
        except KeyboardInterrupt:
            return


@cli.group("witness")
def witness_group() -> None:
    """A witness (C2SP tlog-witness): cosigns a log's checkpoints only if they are consistent.

    \b
    Example:
      ledger witness serve --key witness.key --log national.example=national.pub --state w.sqlite
    """


@witness_group.command("keygen")
@click.option("--name", required=True, help="the witness's name, shown in its cosignature lines")
@click.option("-o", "--output", "key_file", required=True, type=click.Path(dir_okay=False), help="signer key file")
def witness_keygen_command(name: str, key_file: str) -> None:
    """Make a witness key pair (tlog-cosignature/v1); prints the verifier key, writes it to FILE.pub.

    \b
    Example:
      ledger witness keygen --name witness.hunan.example -o witness.key
    """
    click.echo(cosigning.witness_keygen(key_file, name))


@witness_group.command("serve")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False), help="witness signer key file")
@click.option("--log", "logs", multiple=True, required=True, help="ORIGIN=VKEY: a log to witness and its key (or file)")
@click.option("--state", required=True, type=click.Path(dir_okay=False), help="the witness's state (SQLite file)")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=0, type=click.IntRange(0, 65535), help="default: any free port (printed)")
def witness_serve_command(key_file: str, logs: tuple[str, ...], state: str, host: str, port: int) -> None:
    """Answer POST /add-checkpoint for the given logs until stopped (prints its URL first).

    \b
    Example:
      ledger witness serve --key witness.key --log national.example=national.pub --state w.sqlite
    """
    from ledger.witness_http import make_server

    server = make_server(cosigning.load_witness(key_file, logs, state), host, port)
    click.echo(f"witness listening on http://{host}:{server.server_address[1]}", err=True)
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _cosign(ctx: click.Context, witnesses: Sequence[str], policy_file: str | None, timeout: float) -> str | None:
    """``checkpoint --witness/--policy``: the cosigned note, stored; None when no witness is asked."""
    policy = load_policy(policy_file) if policy_file else None
    peers = [cosigning.parse_peer(spec) for spec in witnesses]
    peers += cosigning.policy_peers(policy) if policy else []
    if not peers:
        return None
    done = cosigning.cosign_latest(open_app(ctx), peers, policy=policy, timeout=timeout)
    for name, why in sorted(done.failures.items()):
        click.echo(f"Warning: witness {name}: {printable(why)}", err=True)
    if done.missing is not None:
        raise done.missing
    return done.note


def _proof_keys(key_files: Sequence[str], policy_file: str | None) -> list[str]:
    """``verify-proof``'s log keys: the files given, else the policy's log lines."""
    if key_files or not policy_file:
        if not key_files:
            raise click.UsageError("give the ledger's verifier key (--key) or a policy (--policy)")
        return integrity.load_verifier_keys(key_files)
    return [key.encode() for key, _ in load_policy(policy_file).logs.values()]


def _quorum(policy_file: str | None, note: str | None) -> None:
    """``verify --policy`` / ``verify-proof --policy``: the checkpoint must reach the quorum."""
    if policy_file:
        cosigning.check_quorum(load_policy(policy_file), note)


# END transparency commands
# ------------------------------------------------------------------------------------------


def main() -> None:
    """Entry point of the ``ledger`` console script; plugins add their commands first."""
    try:
        plugin_manager().hook.ledger_register_commands(cli=cli)
    except LedgerError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(e.exit_code)
    cli(prog_name="ledger")
