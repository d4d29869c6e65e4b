"""The repository documents itself, and the documents say what the code does: the decision-file
format against the parser's schema, the README's exit codes against ``ledger.errors``, its
environment variables against the code, its examples run, and every command and option explained."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from conftest import run_cli

from cli import cli
from ledger import errors
from ledger.events import COMMON_FIELDS
from ledger.plugins import plugin_manager
from projections.kinds import COMMON, kind_fields

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
FORMAT = (ROOT / "docs" / "decision-format.md").read_text(encoding="utf-8")
ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+?) \| (yes|no) \|", re.M)


def _section(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n#", 1)[0]


def test_the_format_lists_exactly_each_kinds_fields_as_the_parser_takes_them() -> None:
    documented = {
        kind: [(name, type_, required == "yes") for name, type_, required in ROW.findall(body)]
        for kind, body in re.findall(r"^### `([^`]+)`\n(.*?)(?=^### |^## |\Z)", FORMAT, flags=re.M | re.S)
    }
    schema = {kind: [(f.name, f.type, f.required) for f in fields] for kind, fields in kind_fields().items()}
    assert sorted(documented) == sorted(schema)
    for kind, fields in schema.items():
        assert documented[kind] == fields, kind


def test_the_format_lists_exactly_the_common_fields() -> None:
    documented = [(n, t, r == "yes") for n, t, r in ROW.findall(_section(FORMAT, "## Fields every decision has"))]
    assert documented == list(COMMON)
    internal = {"originator_id", "originator_version", "timestamp", "subject", "extensions", "decision_id"}
    assert {name for name, _, _ in COMMON} == {"id", "kind"} | (COMMON_FIELDS - internal)


def test_ledger_kinds_prints_the_same_fields(tmp_path: Path) -> None:
    out = run_cli(["kinds", "filing.submitted", "--format", "csv"], str(tmp_path / "unused.sqlite"))
    assert out.exit_code == 0
    lines = out.stdout.splitlines()
    assert lines[0] == "\ufeffkind,field,type,required"  # CSV carries a BOM
    assert lines[-1] == "filing.submitted,materials,list of text,yes"
    assert len(lines) == 1 + len(COMMON) + len(kind_fields()["filing.submitted"])
    unknown = run_cli(["kinds", "filing.submited"], str(tmp_path / "unused.sqlite"))
    assert unknown.exit_code == 4 and "did you mean filing.submitted" in unknown.stderr


def _all_errors() -> list[type[errors.LedgerError]]:
    found, todo = [], [errors.LedgerError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_the_readme_exit_codes_are_the_codes_the_errors_carry() -> None:
    table = _section(README, "## Exit codes")
    rows = re.findall(r"^\| (\d+) \| [^|]+ \|\s*([^|]*?)\s*\|$", table, flags=re.M)
    documented = {int(code): set(re.findall(r"`(\w+)`", classes)) for code, classes in rows}
    defined: dict[int, set[str]] = {0: set(), 2: set()}  # done, and click's usage error
    for cls in _all_errors():
        if "exit_code" in vars(cls) and cls.__module__ == errors.__name__:
            defined.setdefault(cls.exit_code, set()).add(cls.__name__)
    assert documented == defined


def test_the_readme_lists_every_environment_variable_the_code_reads() -> None:
    read: set[str] = set()
    sources = [ROOT / "cli.py", *(p for d in ("ledger", "projections", "plugins") for p in (ROOT / d).rglob("*.py"))]
    for path in sources:
        read.update(re.findall(r"\"(LEDGER_[A-Z_]+)\"", path.read_text(encoding="utf-8")))
    documented = set(re.findall(r"^\| `(LEDGER_[A-Z_]+)` \|", _section(README, "## Environment variables"), re.M))
    assert read and documented == read


def _commands() -> list[tuple[str, click.Command]]:
    """Every command, the plugins' too (``main`` registers them before the command line runs)."""
    plugin_manager().hook.ledger_register_commands(cli=cli)
    out: list[tuple[str, click.Command]] = []
    todo: list[tuple[str, click.Command]] = [("ledger", cli)]
    ctx = click.Context(cli)
    while todo:
        name, command = todo.pop()
        out.append((name, command))
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                found = command.get_command(ctx, sub)
                if found is not None:
                    todo.append((f"{name} {sub}", found))
    return sorted(out, key=lambda c: c[0])


def test_every_option_of_every_command_has_help_and_no_help_cites_an_issue() -> None:
    missing = [
        f"{name} {p.opts[0]}"
        for name, command in _commands()
        for p in command.params
        if isinstance(p, click.Option) and not (p.help or "").strip()
    ]
    assert missing == []
    cited = [name for name, command in _commands() if re.search(r"\bissue \d", command.help or "")]
    assert cited == []


def test_every_command_has_an_example() -> None:
    """Reports are built from their ``Report`` (``ledger report --list`` shows their options)."""
    lacking = [
        name
        for name, command in _commands()
        if not isinstance(command, click.Group)
        and not name.startswith("ledger report ")
        and "ledger " not in (command.help or "").split("\b", 1)[-1]
    ]
    assert lacking == []


def test_one_option_name_for_one_thing() -> None:
    """``--province`` names a province wherever a command takes one (``log`` also as
    ``--jurisdiction``); ``--as-of`` is a day everywhere."""
    for name, command in _commands():
        for p in command.params:
            if isinstance(p, click.Option) and "--jurisdiction" in p.opts:
                assert "--province" in p.opts, name


def test_a_bad_as_of_exits_2_everywhere(tmp_path: Path) -> None:
    plugin_manager().hook.ledger_register_commands(cli=cli)
    db = str(tmp_path / "l.sqlite")
    assert run_cli(["import", "-"], db, input=b"").exit_code == 0
    commands = (["catalog"], ["disclosure"], ["trail"], ["institutions"], ["physicians"], ["hunan", "deadlines"])
    for args in (*commands, ["report", "filings-over-time", "--province", "hunan"], ["publish", "--out", "site"]):
        result = run_cli([*args, "--as-of", "2019-13-01"], db)
        assert result.exit_code == 2, (args, result.stderr)
        assert "--as-of" in result.stderr


def _usage_lines() -> list[str]:
    block = README.split("## Using it", 1)[1].split("```sh\n", 1)[1].split("\n```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.replace("\\\n", " ").splitlines()]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> str:
    db = str(tmp_path_factory.mktemp("readme") / "demo.sqlite")
    assert run_cli(["demo"], db).exit_code == 0
    return db


def test_the_readmes_examples_run_on_the_demo(demo: str) -> None:
    """Every ``ledger`` line of "Using it" but those that need a file or folder of one's own, and the
    server (tested in tests/projections/test_api_serve.py)."""
    ran = []
    for line in _usage_lines():
        args = shlex.split(line)[1:]
        if not args or args[0] in ("init", "import", "export", "publish", "serve"):
            continue
        result = run_cli(args, demo)
        assert result.exit_code == 0, (line, result.stderr)
        ran.append(args[0])
    assert "record" in ran and "trail" in ran and "institutions" in ran
    assert "CS-2019-0042" in run_cli(["log", "--kind", "filing.completed"], demo).stdout
