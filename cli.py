"""The ``ledger`` command line: arguments in, formatted views out. It holds no rule.

Commands are grouped by what they act on (decisions, views, plugins); every view prints a table for
people or ``--format json|csv`` for programs. Every ``LedgerError`` becomes one clear message on
stderr and the error's exit code: a user never sees a traceback for bad input.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, TypeVar

import click
from eventsourcing.persistence import PersistenceError

from ledger import canonical
from ledger.application import (
    DB_ENV,
    MAX_LINE_BYTES,
    ImportResult,
    LedgerApplication,
    RecordedDecision,
    database_env,
    redact,
)
from ledger.decisions import from_json_dict, kind_specs, parse_line
from ledger.errors import (
    ConfigurationError,
    DecisionError,
    LedgerError,
    MalformedDecision,
    StorageError,
    UnknownReference,
)
from ledger.plugins import describe, jurisdictions, plugin_manager
from projections.output import cell_text, display_width, emit, option_day, safe_csv, shown_cell, visible
from projections.views import Views, catch_up

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("table", "json", "csv")


# --- output: projections.output, shared with plugins' commands --------------------------------

_width = display_width
_cell = shown_cell
_safe_csv = safe_csv


def format_option(f: F) -> F:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table for people; json or csv for programs",
    )(f)


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
@click.version_option(package_name="medtech-ledger")
@click.pass_context
def cli(ctx: click.Context, db: str | None) -> None:
    """An audit ledger of medical-technology regulation in China.

    Every decision — a catalogue change, a filing, a privilege, a suspension, a certification —
    is recorded once and for ever; the views are rebuilt from the decisions alone.
    """
    ctx.ensure_object(dict)
    ctx.obj["db"] = db


def open_app(ctx: click.Context) -> LedgerApplication:
    """Open the ledger once per command and close it when the command ends."""
    obj = ctx.find_root().obj
    if "app" not in obj:
        app = LedgerApplication.open(obj.get("db"))
        obj["app"] = app
        ctx.find_root().call_on_close(app.close)
    result: LedgerApplication = obj["app"]
    return result


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
    if not sys.stderr.isatty():
        return _bounded_lines(handle), None
    size = Path(path).stat().st_size
    bar = stack.enter_context(click.progressbar(length=size, label=f"importing {path}", file=sys.stderr))
    return _bounded_lines(handle), bar.update


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
@click.pass_context
def import_command(ctx: click.Context, files: tuple[str, ...]) -> None:
    """Record decision files (JSON Lines, DECISIONS.md; - for stdin).

    Each file is recorded wholly or not at all; importing it again adds nothing.
    """
    _refuse_copy(ctx)
    import_files(open_app(ctx), files)


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
    """Sign every decision of a decision file with an authority's key (issue 6, "Authority").

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
@click.option("--note")
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
    """Record one decision of KIND (e.g. filing.completed)."""
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
    app = open_app(ctx)
    with then_catch_up(app):
        result = app.record(record)
    if result.recorded:
        click.echo(f"recorded {decision_id} at position {result.last_position}")
    else:
        click.echo(f"{decision_id} is already in the ledger with the same content")


@cli.command("export")
@click.option(
    "-o", "--output", type=click.File("w", encoding="utf-8"), default="-", help="file to write (default stdout)"
)
@click.pass_context
def export_command(ctx: click.Context, output: IO[str]) -> None:
    """Write the whole log as a decision file that re-imports to the same ledger."""
    for record in open_app(ctx).export():
        output.write(record.to_json() + "\n")


LOG_COLUMNS = ("position", "recorded_at", "effective", "id", "kind", "by", "basis", "subject")


def _log_row(d: RecordedDecision) -> dict[str, Any]:
    return {
        "position": d.position,
        "recorded_at": d.recorded_at.isoformat(timespec="seconds"),
        "effective": d.record.effective,
        "id": d.record.id,
        "kind": d.record.kind,
        "by": d.record.by,
        "basis": d.record.basis,
        "subject": d.subject,
    }


def _jurisdiction_names(code: str) -> list[str]:
    """What decisions write for a jurisdiction: its code (catalogues) and its province's names."""
    for j in jurisdictions(plugin_manager()):
        if code in (j.code, j.name):
            return sorted({j.code, j.name, *j.aliases})
    return [code]


@cli.command("log")
@click.option("--subject", help="e.g. institution:PDY00001, use:PDY00001|hunan:S14, technology:national:G01")
@click.option("--kind", "kinds", multiple=True, help="a kind of decision (repeatable)")
@click.option("--jurisdiction", help="national, a province code (hunan) or name (湖南省)")
@click.option("--from", "date_from", help="effective on or after YYYY-MM-DD")
@click.option("--to", "date_to", help="effective on or before YYYY-MM-DD")
@click.option("--limit", type=click.IntRange(min=1))
@format_option
@click.pass_context
def log_command(
    ctx: click.Context,
    subject: str | None,
    kinds: tuple[str, ...],
    jurisdiction: str | None,
    date_from: str | None,
    date_to: str | None,
    limit: int | None,
    fmt: str,
) -> None:
    """The decisions in record order, filtered."""
    app = open_app(ctx)
    rows = app.records(
        subject=subject,
        kinds=kinds,
        jurisdictions=_jurisdiction_names(jurisdiction) if jurisdiction else (),
        effective_from=_date_option(date_from, "--from"),
        effective_to=_date_option(date_to, "--to"),
        limit=limit,
    )
    emit([_log_row(d) for d in rows], LOG_COLUMNS, fmt)


def _date_option(value: str | None, name: str) -> date | None:
    """A day given to an option (``output.option_day``, the parser every date option uses)."""
    return option_day(value, name)


@cli.command("show")
@click.argument("decision_id")
@format_option
@click.pass_context
def show_command(ctx: click.Context, decision_id: str, fmt: str) -> None:
    """One decision with its record time, position, and any corrections."""
    d = open_app(ctx).decision(decision_id)
    if fmt == "json":
        click.echo(canonical.dumps([d.to_json_dict(), *(c.to_json_dict() for c in d.corrections)]))
        return
    if fmt == "csv":
        rows = [d.to_json_dict(), *(c.to_json_dict() for c in d.corrections)]
        emit(rows, sorted({k for r in rows for k in r}, key=lambda k: (k.startswith("_"), k)), fmt)
        return
    out = [
        ("position", d.position),
        ("recorded at", d.recorded_at.isoformat()),
        ("subject", d.subject),
        ("version", d.version),
        *d.record.to_json_dict().items(),
    ]
    width = max(_width(str(k)) for k, _ in out)
    for key, value in out:
        click.echo(f"{key}{' ' * (width - _width(str(key)))}  {_cell(value)}")
    for c in d.corrections:
        click.echo(
            f"\n{c.record.kind} {visible(c.record.id)} (position {c.position}, effective {c.record.effective}): "
            f"{visible(canonical.dumps(c.record.fields.get('fields') or c.record.fields.get('reason')))}"
        )


# --- views ----------------------------------------------------------------------------------


def time_options(f: F) -> F:
    """``--as-of`` (valid time) and ``--known-at`` (record time), on every view."""
    f = click.option(
        "--known-at",
        "known_at",
        metavar="POSITION|TIMESTAMP",
        help="as the ledger knew it then: a log position or an ISO timestamp",
    )(f)
    return click.option(
        "--as-of", "as_of", metavar="YYYY-MM-DD", help="what was in force on that day (default: today)"
    )(f)


def open_views(ctx: click.Context) -> Views:
    obj = ctx.find_root().obj
    if "views" not in obj:
        obj["views"] = Views(open_app(ctx))
    views: Views = obj["views"]
    return views


@cli.command("catalog")
@click.option("--province", help="a province code (hunan); national entries only when omitted")
@time_options
@format_option
@click.pass_context
def catalog_command(
    ctx: click.Context, province: str | None, as_of: str | None, known_at: str | None, fmt: str
) -> None:
    """The catalogue in force: national prohibited and restricted, plus the province's own."""
    entries = open_views(ctx).catalog(province, as_of=_date_option(as_of, "--as-of"), known_at=known_at)
    rows = [
        {
            "code": e.ref,
            "name": e.name,
            "class": e.tech_class,
            "version": e.version,
            "since": e.since,
            "decision": e.listed_by,
        }
        for e in entries
    ]
    emit(rows, ("code", "name", "class", "version", "since", "decision"), fmt)


@cli.command("disclosure")
@click.option("--province", help="a province code (hunan)")
@click.option("--institution", help="one institution's 院务公开 (MTM-2018#24)")
@time_options
@format_option
@click.pass_context
def disclosure_command(
    ctx: click.Context, province: str | None, institution: str | None, as_of: str | None, known_at: str | None, fmt: str
) -> None:
    """What must be public: filings per restricted technology, suspensions, training bases, trainees
    (MTM-2018#30, #40); per institution its technologies, surgical grades and cases (#24)."""
    views = open_views(ctx)
    day = _date_option(as_of, "--as-of")
    sections: list[tuple[str, list[dict[str, Any]], tuple[str, ...]]] = []
    filings = views.public_filings(province, institution, as_of=day, known_at=known_at)
    sections.append(
        (
            "filings",
            [
                {
                    "technology": f.technology,
                    "technology_name": f.technology_name,
                    "institution": f.institution,
                    "institution_name": f.institution_name,
                    "city": f.city,
                    "status": f.status,
                    "filed_on": f.filed_on,
                    "authority": f.authority,
                    "notice_until": f.notice_until,
                }
                for f in filings
            ],
            (
                "technology",
                "technology_name",
                "institution_name",
                "city",
                "status",
                "filed_on",
                "authority",
                "notice_until",
            ),
        )
    )
    if institution is None:
        sections.append(
            (
                "training_bases",
                [vars(b) for b in views.training_bases(province, as_of=day, known_at=known_at)],
                ("technology", "technology_name", "institution_name", "status", "enrolment_notice", "filed_on"),
            )
        )
        sections.append(
            (
                "trainees",
                [vars(t) for t in views.trainees(province, as_of=day, known_at=known_at)],
                ("technology", "technology_name", "physician_name", "institution_name", "certified_on"),
            )
        )
    else:
        sections.append(
            (
                "privileges",
                [
                    vars(p) | {"procedures": list(p.procedures)}
                    for p in views.privileges(institution, as_of=day, known_at=known_at)
                ],
                ("physician_name", "level", "procedures", "status", "since"),
            )
        )
    sections.append(
        (
            "cases",
            [vars(c) for c in views.case_counts(province, institution, as_of=day, known_at=known_at)],
            ("technology", "technology_name", "institution", "cases"),
        )
    )
    if fmt == "json":
        click.echo(
            canonical.dumps({name: [{c: r.get(c) for c in cols} for r in rows] for name, rows, cols in sections})
        )
        return
    for i, (name, rows, cols) in enumerate(sections):
        if fmt == "table":
            click.echo(("\n" if i else "") + f"{name.replace('_', ' ')}:")
        emit(rows, cols, fmt)


@cli.command("trail")
@click.option("--province", help="a province code (hunan)")
@click.option("--institution")
@click.option("--physician")
@click.option("--technology", help="<catalog>:<code>, e.g. hunan:S14")
@click.option("--findings-only", is_flag=True, help="only the findings")
@time_options
@format_option
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
) -> None:
    """Every decision about a subject in effective-date order with its basis, and the findings."""
    trail = open_views(ctx).trail(
        province=province,
        institution=institution,
        physician=physician,
        technology=technology,
        as_of=_date_option(as_of, "--as-of"),
        known_at=known_at,
    )
    entry_cols = ("effective", "position", "id", "kind", "by", "basis", "summary")
    finding_cols = ("effective", "severity", "article", "rule", "message", "decisions")
    entries = [vars(e) | {"id": e.decision_id} for e in trail.entries]
    found = [vars(f) | {"decisions": list(f.decisions)} for f in trail.findings]
    if fmt == "json":
        click.echo(
            canonical.dumps(
                {
                    "entries": [] if findings_only else [{c: e[c] for c in entry_cols} for e in entries],
                    "findings": [{c: f[c] for c in finding_cols} for f in found],
                }
            )
        )
        return
    if not findings_only:
        if fmt == "table":
            click.echo("decisions:")
        emit(entries, entry_cols, fmt)
    if fmt == "table":
        click.echo("\nfindings:")
    emit(found, finding_cols, fmt)


@cli.command("rebuild")
@click.argument("names", nargs=-1)
@click.pass_context
def rebuild_command(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Rebuild projections (all, or NAMES) from the first record."""
    views = Views(open_app(ctx), catch_up=False)
    unknown = sorted(set(names) - set(views.runner.projections))
    if unknown:
        raise click.BadParameter(f"no projection {', '.join(unknown)}; known: {', '.join(views.runner.projections)}")
    read = views.runner.rebuild(names or None)
    click.echo(f"rebuilt {', '.join(names or views.runner.projections)} from {read} records", err=True)


@cli.command("project")
@click.option("--follow", is_flag=True, help="keep catching up as decisions are recorded (Ctrl-C to stop)")
@click.option("--poll", type=float, default=0.5, show_default=True, help="seconds between looks at the log")
@click.pass_context
def project_command(ctx: click.Context, follow: bool, poll: float) -> None:
    """Catch every projection up with the log; with --follow, run as a projection process."""
    views = Views(open_app(ctx), catch_up=False)
    read = views.runner.catch_up()
    click.echo(f"caught up: {read} records applied; positions {views.runner.positions()}", err=True)
    if follow:
        with contextlib.suppress(KeyboardInterrupt):
            views.runner.follow(poll=poll)


# --- plugins and set-up ---------------------------------------------------------------------


@cli.command("plugins")
@format_option
def plugins_command(fmt: str) -> None:
    """Every plugin (built-in and installed), its version, the hooks it implements and what it adds."""
    plugins = describe(plugin_manager())
    rows: list[dict[str, Any]] = [
        {
            "name": p.name,
            "version": p.version,
            "distribution": p.distribution,
            "hooks": list(p.hooks),
            "contributes": {k: list(v) for k, v in p.contributes.items()}
            if fmt != "table"
            else "; ".join(f"{k}: {', '.join(v)}" for k, v in p.contributes.items() if v),
        }
        for p in plugins
    ]
    emit(rows, ("name", "version", "distribution", "hooks", "contributes"), fmt)


def _hook_files(hook: Callable[..., Any]) -> list[Path]:
    return sorted({Path(p) for contributed in hook() for p in contributed or ()}, key=str)


@cli.command("init")
@click.pass_context
def init_command(ctx: click.Context) -> None:
    """Create the ledger (if new) and record every plugin's reference catalogues."""
    app = open_app(ctx)
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
    app = open_app(ctx)
    pm = plugin_manager()
    import_reference(app, _hook_files(pm.hook.ledger_reference_data))
    import_reference(app, _hook_files(pm.hook.ledger_demo_data))
    click.echo(f"\nThe catalogue in force in Hunan today ({date.today()}):\n")
    ctx.invoke(catalog_command, province="hunan", as_of=None, known_at=None, fmt="table")
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
            as_of=None,
            known_at=None,
            fmt="table",
        )
    click.echo(f"\n{app.position()} decisions in the ledger. Try: ledger log --jurisdiction hunan | less", err=True)


# --- tamper evidence (issue 5): keys, checkpoints, verify, offline proofs -------------------
# BEGIN integrity commands: everything from here to `def main()` is ledger.integrity's CLI.

from ledger import integrity as _integrity  # noqa: E402


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
    """Make an Ed25519 key pair for signing checkpoints; prints the verifier (public) key only."""
    path = Path(key_file) if key_file else _integrity.default_key_path()
    vkey = _integrity.keygen(path, name)
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
    """
    key = _integrity.load_signer_key(key_file or _integrity.default_key_path())
    note = _integrity.checkpoint(open_app(ctx), key, origin, rotate_key=rotate_key, new_origin=new_origin)
    note = _cosign(ctx, witnesses, policy_file, timeout) or note
    if output:
        _write_text(output, note)
    click.echo(note, nl=False)


@cli.command("checkpoints")
@format_option
@click.pass_context
def checkpoints_command(ctx: click.Context, fmt: str) -> None:
    """The checkpoints the ledger signed, oldest first (json and csv include the signed notes)."""
    rows = [
        {
            "seq": cp.seq,
            "size": cp.size,
            "time": cp.time,
            "origin": cp.origin,
            "root": _integrity.base64_hash(cp.root),
            "note": cp.note,
        }
        for cp in _integrity.stored_checkpoints(open_app(ctx))
    ]
    columns = ("seq", "size", "time", "origin", "root")
    emit(rows, columns if fmt == "table" else (*columns, "note"), fmt)


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
    """
    keys = _integrity.load_verifier_keys(key_files) + (_proof_keys((), policy_file) if policy_file else [])
    notes = [_read_text(path) for path in checkpoint_files] + _follow.verified_notes(open_app(ctx))
    report = _integrity.verify(open_app(ctx), notes, keys, full=full)
    report.check(strict=strict)  # a disagreement first, on its own; under --strict, what is not covered too
    _quorum(policy_file, _cosigning.published_note(open_app(ctx)))
    for warning in report.warnings:
        click.echo(f"Warning: {printable(warning)}", err=True)
    click.echo(report.summary())
    if views:
        from projections.audit import verify_views

        (views_report := verify_views(open_app(ctx))).check()
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
    """Write an offline proof (C2SP tlog-proof and the decision) that a decision is in the signed log."""
    key = _integrity.load_signer_key(key_file) if key_file else None
    bundle = _integrity.prove(open_app(ctx), decision_id, key)
    _write_text(output, _integrity.dump_bundle(bundle))
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
    (not JSON, a key twice, nested too deeply, a field missing or of the wrong type)."""
    keys, raw = _proof_keys(key_files, policy_file), _read_bundle(proof_file)
    report = _integrity.verify_proof(raw, keys)
    report.check()
    _quorum(policy_file, str(_integrity.load_bundle(raw)["checkpoint"]))
    click.echo(f"OK: {report.summary()}")


def _read_bundle(path: str) -> bytes:
    """The bytes of a proof file (``-`` for stdin), at most one more than a bundle may have, so
    that ``load_bundle`` refuses a larger one without it being read whole."""
    limit = _integrity.MAX_BUNDLE_BYTES + 1
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


# --- publishing (issue 7): the public site, and reports as spreadsheets and plots -----------
# BEGIN publish commands: everything from here to the END line is projections.publish's CLI.

import io as _io  # noqa: E402

from ledger.errors import PluginError as _PluginError  # noqa: E402
from projections import plots as _plots  # noqa: E402
from projections import publish as _publish  # noqa: E402
from projections.reports import Report as _Report  # noqa: E402
from projections.reports import Table as _Table  # noqa: E402

REPORT_FORMATS = ("csv", "xlsx", *_plots.PLOT_FORMATS)
_OWN_REPORT_OPTIONS = frozenset({"format", "output", "o", "help"})


@cli.command("publish")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="where the site appears: a link to a complete new version, swapped in atomically (absent, an "
    "empty folder, or an earlier site; anything else is refused)",
)
@click.option("--province", help="one jurisdiction only: a code (hunan), a name (湖南省) or national; default all")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="publish what was in force that day (default: today)")
@click.pass_context
def publish_command(ctx: click.Context, out_dir: str, province: str | None, as_of: str | None) -> None:
    """Write the public disclosure lists as a static web site (MTM-2018#24, #30, #40; CQ-2017 公示).

    Per province: the catalogue in force, the institutions filed per restricted technology,
    suspended and stopped uses, training bases and certified trainees; per institution its
    院务公开 page. Pages name physicians, never their licence numbers, and publish no case
    reference. Each page is stamped with the ledger position, the as-of date and the latest
    signed checkpoint; the same ledger and --as-of give the same bytes.

    The site is written into a new folder beside --out and swapped in whole (--out is a link
    to it); the previous version is removed, so pages of subjects that left the lists vanish.
    See docs/publishing.md.
    """
    views = open_views(ctx)
    day = _date_option(as_of, "--as-of") or date.today()
    written = _publish.publish(views, Path(out_dir), province=province, as_of=day)
    _write_log_beside(ctx, out_dir)
    stamp = _publish.read_stamp(views.app, day)
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


def _reports() -> dict[str, _Report]:
    """The built-in reports and every enabled plugin's, by name; a name claimed twice is refused."""
    found = [_plots.FILINGS_OVER_TIME, *(r for c in plugin_manager().hook.ledger_reports() for r in c or ())]
    out: dict[str, _Report] = {}
    for report in sorted(found, key=lambda r: r.name):
        if report.name in out:
            raise _PluginError(f"two reports are named {report.name!r}")
        out[report.name] = report
    return out


def _write_report_csv(table: _Table, out: IO[str]) -> None:
    """The main table as CSV: the form's column headings, then the rows, formulas neutralised."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([_safe_csv(c.name) for c in table.columns])
    for row in table.rows:
        writer.writerow([_safe_csv(cell_text(row.get(c.key))) for c in table.columns])


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
    ctx: click.Context, report: _Report, options: dict[str, str | None], fmt: str | None, output: str | None
) -> None:
    suffix = Path(output).suffix.lower().lstrip(".") if output and output != "-" else ""
    fmt = fmt or (suffix if suffix in REPORT_FORMATS else "csv")
    if fmt in _plots.PLOT_FORMATS and report.name not in _plots.PLOTTABLE:
        raise click.UsageError(
            f"{report.name} is a table: --format csv or xlsx (plots: {', '.join(sorted(_plots.PLOTTABLE))})", ctx
        )
    table = report.build(open_views(ctx), options)
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
            buffer = _io.BytesIO()
            _publish.write_xlsx(table, buffer)
            _write_bytes(target, buffer.getvalue())
        else:
            _write_bytes(target, _plots.render(table, fmt, fallback_title=report.name))
        if target == "-":
            return
        output = target
    click.echo(f"{report.name}: {len(table.rows)} rows written to {output} ({fmt})", err=True)


def _report_command(report: _Report) -> click.Command:
    """A command for one report: its ``Option``s become ``--name VALUE`` options."""
    params: list[click.Parameter] = []
    dests: dict[str, str] = {}
    for i, option in enumerate(report.options):
        if option.name in _OWN_REPORT_OPTIONS:
            raise _PluginError(f"report {report.name!r}: its option --{option.name} clashes with `ledger report`'s own")
        dest = f"report_option_{i}"
        dests[dest] = option.name
        extra: dict[str, Any] = {} if option.default is None else {"default": option.default, "show_default": True}
        params.append(
            click.Option(
                [f"--{option.name}", dest], required=option.required, help=option.help, metavar="VALUE", **extra
            )
        )
    formats = REPORT_FORMATS if report.name in _plots.PLOTTABLE else ("csv", "xlsx")
    params.append(
        click.Option(
            ["--format", "fmt"],
            type=click.Choice(formats),
            help="csv (programs; the main table), xlsx (the official form's layout, one sheet per part)"
            + (", png or svg (a plot)" if report.name in _plots.PLOTTABLE else "")
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

    def run(fmt: str | None, output: str | None, **values: str | None) -> None:
        options = {dests[key]: value for key, value in values.items()}
        _run_report(click.get_current_context(), report, options, fmt, output)

    text = report.title + (f" ({report.article})" if report.article else "")
    return click.Command(report.name, callback=run, params=params, help=text, short_help=report.title)


class ReportGroup(click.Group):
    """``ledger report NAME``: one command per report, built from its ``Report`` when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_reports())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        report = _reports().get(cmd_name)
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
    -o summary.xlsx` or `ledger report filings-over-time --province hunan --format png`.
    """
    if ctx.invoked_subcommand is not None and not list_reports:
        return
    rows = [
        {
            "name": r.name,
            "options": ", ".join(f"--{o.name}" + (" (required)" if o.required else "") for o in r.options),
            "formats": "|".join(REPORT_FORMATS if r.name in _plots.PLOTTABLE else ("csv", "xlsx")),
            "article": r.article,
            "title": r.title,
        }
        for r in _reports().values()
    ]
    emit(rows, ("name", "options", "formats", "article", "title"), "table")
    ctx.exit(0)


# END publish commands
# ------------------------------------------------------------------------------------------


# --- transparency: the log as tlog-tiles, following another ledger, witnesses ---------------
# BEGIN transparency commands: everything from here to the END line is ledger.follow's,
# ledger.cosigning's and ledger.integrity.tiles_out's CLI (docs/transparency.md).

import time as _time  # noqa: E402

from ledger import cosigning as _cosigning  # noqa: E402
from ledger import follow as _follow  # noqa: E402
from ledger.integrity import tiles_out as _tiles_out  # noqa: E402
from ledger.policy import load_policy as _load_policy  # noqa: E402
from ledger.tiles import TileError as _TileError  # noqa: E402


def _refuse_copy(ctx: click.Context) -> None:
    """``import`` and ``record`` into a followed copy would fork it from the log it follows."""
    _follow.refuse_if_followed(open_app(ctx))


def _write_log_beside(ctx: click.Context, out_dir: str) -> None:
    """``publish`` also writes the log's tiles into ``<out>.log``, a stable folder beside the site."""
    app = open_app(ctx)
    if _integrity.stored_checkpoints(app):
        folder = Path(out_dir).with_name(Path(out_dir).name + ".log")
        done = _tiles_out.write_tiles(app, folder)
        click.echo(f"log of {done.size} records published as tiles in {folder}", err=True)


@cli.command("tiles")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="folder of the tiles")
@click.pass_context
def tiles_command(ctx: click.Context, out_dir: str) -> None:
    """Write the log of the latest checkpoint as C2SP tlog-tiles into a folder (incremental).

    The checkpoint file is written last: a reader never sees a checkpoint whose tiles are missing.
    """
    done = _tiles_out.write_tiles(open_app(ctx), out_dir)
    click.echo(
        f"{done.tiles} hash tiles and {done.bundles} entry bundles written to {out_dir} "
        f"(size {done.old_size} -> {done.size})",
        err=True,
    )


def _trust(key_files: Sequence[str], policy_file: str | None) -> _follow.Trust:
    keys = _integrity.load_verifier_keys(key_files) if key_files else []
    return _follow.Trust(keys, _load_policy(policy_file) if policy_file else None)


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

    Exit codes: 0 up to date; 5 no key or policy, or a ledger of its own; 9 the tiles do not match
    the signed checkpoint; 10 the checkpoint is not signed by the key; 12 the log contradicts what
    it showed before (the evidence is kept; see docs/transparency.md).
    """
    trust = _trust(key_files, policy_file)
    app = open_app(ctx)
    while True:
        try:
            done = _follow.follow(app, source, trust, evidence_dir=evidence_dir)
        except _TileError as e:
            if poll is None:
                raise
            click.echo(f"Warning: {printable(str(e))}; trying again", err=True)
        else:
            cosigned = f", cosigned by {', '.join(done.witnesses)}" if done.witnesses else ""
            click.echo(f"{done.origin}: {done.size} records verified ({done.stored} new){cosigned}")
        if poll is None:
            return
        try:
            _time.sleep(poll)
        except KeyboardInterrupt:
            return


@cli.group("witness")
def witness_group() -> None:
    """A witness (C2SP tlog-witness): cosigns a log's checkpoints only if they are consistent."""


@witness_group.command("keygen")
@click.option("--name", required=True, help="the witness's name, shown in its cosignature lines")
@click.option("-o", "--output", "key_file", required=True, type=click.Path(dir_okay=False), help="signer key file")
def witness_keygen_command(name: str, key_file: str) -> None:
    """Make a witness key pair (tlog-cosignature/v1); prints the verifier key, writes it to FILE.pub."""
    click.echo(_cosigning.witness_keygen(key_file, name))


@witness_group.command("serve")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False), help="witness signer key file")
@click.option("--log", "logs", multiple=True, required=True, help="ORIGIN=VKEY: a log to witness and its key (or file)")
@click.option("--state", required=True, type=click.Path(dir_okay=False), help="the witness's state (SQLite file)")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, type=click.IntRange(0, 65535), help="default: any free port (printed)")
def witness_serve_command(key_file: str, logs: tuple[str, ...], state: str, host: str, port: int) -> None:
    """Answer POST /add-checkpoint for the given logs until stopped (prints its URL first)."""
    from ledger.witness_http import make_server

    server = make_server(_cosigning.load_witness(key_file, logs, state), host, port)
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
    policy = _load_policy(policy_file) if policy_file else None
    peers = [_cosigning.parse_peer(spec) for spec in witnesses]
    peers += _cosigning.policy_peers(policy) if policy else []
    if not peers:
        return None
    done = _cosigning.cosign_latest(open_app(ctx), peers, policy=policy, timeout=timeout)
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
        return _integrity.load_verifier_keys(key_files)
    return [key.encode() for key, _ in _load_policy(policy_file).logs.values()]


def _quorum(policy_file: str | None, note: str | None) -> None:
    """``verify --policy`` / ``verify-proof --policy``: the checkpoint must reach the quorum."""
    if policy_file:
        _cosigning.check_quorum(_load_policy(policy_file), note)


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
