"""A province written only against the documented public API (docs/plugins.md), with no change to core.

``ledger_guangdong`` (beside this file) is the worked example of docs/plugins.md, made up for the
purpose (广东省 and its "GD-2021" are fictitious here): it contributes a jurisdiction, a catalogue
written as a reference decision file, a deadline that overrides the national one, a validator of
its own field, a rule with findings, a report and a command. The tests register it the way
``pytest`` can without installing a distribution — ``make_plugin_manager(extra=(("guangdong",
plugin),))`` — and show each contribution working on a real ledger, through the same paths the CLI
uses; and that it, and the docs' examples, import nothing of the ledger but the names ``ledger``
and ``projections`` export.
"""

from __future__ import annotations

import ast
import builtins
import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import pluggy
import pytest
from click.testing import CliRunner
from ledger_guangdong import Guangdong

import ledger as ledger_api
import projections
from ledger import DecisionError, LedgerApplication, make_plugin_manager
from ledger.plugins import describe
from projections import Views
from projections.views import all_projections

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_FILE = Path(__file__).with_name("ledger_guangdong.py")
DOCS = ROOT / "docs" / "plugins.md"
PUBLIC = {"ledger": ledger_api, "projections": projections}
CORE = ("ledger", "projections", "plugins", "cli")

# --- the history the tests record ----------------------------------------------------------------------

HISTORY: list[dict[str, Any]] = [
    {
        "id": "GD-2021-0001",
        "kind": "institution.registered",
        "effective": "2010-01-01",
        "by": "佛山市卫生局",
        "institution": "GD1",
        "name": "珠江示范医院",
        "province": "广东省",
        "city": "佛山市",
        "category": "医院",
        "level": "二级",
        "licensing_authority": "佛山市卫生健康局",
    },
    {
        "id": "GD-2021-0002",
        "kind": "physician.registered",
        "effective": "2010-02-01",
        "by": "佛山市卫生局",
        "physician": "P1",
        "name": "梁医生",
        "institution": "GD1",
        "title": "主任医师",
    },
    {
        "id": "GD-2021-0003",
        "kind": "privilege.granted",
        "effective": "2021-02-01",
        "by": "GD1",
        "institution": "GD1",
        "physician": "P1",
        "level": 4,
        "procedures": ["guangdong:Y01"],
    },
    {
        "id": "GD-2021-0004",
        "kind": "review.concluded",
        "effective": "2021-03-01",
        "by": "GD1",
        "institution": "GD1",
        "technology": "guangdong:Y01",
        "committee": "ethics",
        "outcome": "approved",
    },
    {
        "id": "GD-2021-0005",
        "kind": "case.performed",
        "effective": "2021-03-08",
        "by": "GD1",
        "institution": "GD1",
        "technology": "guangdong:Y01",
        "physician": "P1",
        "case": "ZJ-001",
        "level": 4,
        "guangdong.robot_serial": "DV-0001",
    },
    {
        "id": "GD-2021-0006",
        "kind": "filing.submitted",
        "effective": "2021-03-24",
        "by": "GD1",
        "institution": "GD1",
        "technology": "guangdong:Y01",
        "technical_lead": "P1",
        "materials": ["备案表"],
    },
    {
        "id": "GD-2021-0007",
        "kind": "filing.completed",
        "effective": "2021-04-02",
        "by": "佛山市卫生健康局",
        "institution": "GD1",
        "technology": "guangdong:Y01",
    },
    {
        "id": "GD-2021-0008",
        "kind": "review.concluded",
        "effective": "2021-03-01",
        "by": "GD1",
        "institution": "GD1",
        "technology": "guangdong:Y01",
        "committee": "management",
        "outcome": "approved",
    },
]


@pytest.fixture
def plugin(tmp_path: Path) -> Guangdong:
    return Guangdong(tmp_path)


@pytest.fixture
def pm(plugin: Guangdong) -> pluggy.PluginManager:
    return make_plugin_manager(extra=(("guangdong", plugin),), disabled=frozenset())


@pytest.fixture
def ledger(tmp_path: Path, pm: pluggy.PluginManager) -> Iterator[tuple[str, LedgerApplication]]:
    """A ledger with every plugin's reference data (Guangdong's catalogue included) and the history."""
    path = str(tmp_path / "ledger.sqlite")
    app = LedgerApplication.open(path, plugins=pm)
    try:
        files = sorted({p for paths in pm.hook.ledger_reference_data() for p in paths or ()}, key=str)
        for file in files:
            with Path(file).open("rb") as fh:
                app.import_lines(fh, source=str(file))
        app.import_lines([json.dumps(d, ensure_ascii=False) for d in HISTORY], source="guangdong-demo.jsonl")
        yield path, app
    finally:
        app.close()


def test_the_plugin_is_listed_with_its_hooks(pm: pluggy.PluginManager) -> None:
    info = next(p for p in describe(pm) if p.name == "guangdong")
    assert info.version == "0.0.1"
    assert set(info.hooks) == {
        "ledger_jurisdictions",
        "ledger_reference_data",
        "ledger_validate_decision",
        "ledger_deadlines",
        "ledger_rules",
        "ledger_reports",
        "ledger_register_commands",
    }


def test_catalogue_enters_as_reference_decisions(ledger: tuple[str, LedgerApplication]) -> None:
    _, app = ledger
    catalog = Views(app).catalog("guangdong", as_of=date(2021, 6, 1))
    assert ("guangdong", "Y01", "restricted") in {(e.catalog, e.code, e.tech_class) for e in catalog}
    assert any(e.catalog == "national" for e in catalog)  # a province sees the national catalogue too


def test_rule_and_deadline_produce_findings_in_the_trail(ledger: tuple[str, LedgerApplication]) -> None:
    """GD-2021#3 (its rule) and GD-2021#2 (its 10-working-day deadline, read by the national
    MTM-2018#11 rule): first case 2021-03-08, 10th working day 2021-03-22, filed 2021-03-24."""
    _, app = ledger
    trail = Views(app).trail(province="guangdong", as_of=date(2021, 12, 31))
    found = {(f.rule, f.article, f.decisions) for f in trail.findings}
    assert found == {
        ("guangdong.level", "GD-2021#3", ("GD-2021-0005", "GD-2021-0001")),
        ("national.late-filing", "MTM-2018#11, GD-2021#2", ("GD-2021-0006", "GD-2021-0005")),
    }
    late = next(f for f in trail.findings if f.rule == "national.late-filing")
    assert late.effective == date(2021, 3, 23)


def test_validator_refuses_its_own_malformed_field(ledger: tuple[str, LedgerApplication]) -> None:
    _, app = ledger
    bad = {**HISTORY[4], "id": "GD-2021-0099", "case": "ZJ-099", "guangdong.robot_serial": ["DV", 1]}
    with pytest.raises(DecisionError) as error:
        app.import_lines([json.dumps(bad, ensure_ascii=False)], source="bad.jsonl")
    assert error.value.field == "guangdong.robot_serial"


def test_report_builds_from_the_views(ledger: tuple[str, LedgerApplication], pm: pluggy.PluginManager) -> None:
    _, app = ledger
    report = next(r for rs in pm.hook.ledger_reports() for r in rs if r.name == "guangdong-filings")
    table = report.build(Views(app), {"as-of": "2021-06-01"})
    assert [c.name for c in table.columns] == ["医疗机构名称", "技术编号", "技术名称", "备案时间", "备案机关"]
    assert [dict(r) for r in table.rows] == [
        {
            "name": "珠江示范医院",
            "code": "Y01",
            "technology": "机器人辅助腔镜手术技术",
            "filed": "20210402",
            "authority": "佛山市卫生健康局",
        },
    ]


def test_command_runs_on_the_ledger(ledger: tuple[str, LedgerApplication], pm: pluggy.PluginManager) -> None:
    path, app = ledger
    cli = click.Group("ledger")
    pm.hook.ledger_register_commands(cli=cli)
    assert {"guangdong", "hunan", "chongqing", "national"} <= set(cli.commands)
    # The CLI keeps its open ledger in the root context's obj (``db``, ``app``); so does this test, with
    # an app that knows the plugin (installed, it would be found through the entry point instead).
    result = CliRunner().invoke(
        cli, ["guangdong", "filings", "--as-of", "2021-06-01"], obj={"db": path, "app": app}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "珠江示范医院\tguangdong:Y01\tfiled\t2021-04-02"


def test_disabling_the_province_removes_exactly_its_contributions(plugin: Guangdong) -> None:
    on = make_plugin_manager(extra=(("guangdong", plugin),), disabled=frozenset())
    off = make_plugin_manager(extra=(("guangdong", plugin),), disabled=frozenset({"guangdong"}))

    def contributions(pm: pluggy.PluginManager) -> set[str]:
        cli = click.Group("ledger")
        pm.hook.ledger_register_commands(cli=cli)
        return (
            {f"rule:{r.id}" for rs in pm.hook.ledger_rules() for r in rs}
            | {f"report:{r.name}" for rs in pm.hook.ledger_reports() for r in rs or ()}
            | {f"deadline:{d.jurisdiction}:{d.name}" for ds in pm.hook.ledger_deadlines() for d in ds}
            | {f"command:{c}" for c in cli.commands}
            | {f"jurisdiction:{j.code}" for js in pm.hook.ledger_jurisdictions() for j in js}
        )

    assert contributions(on) - contributions(off) == {
        "rule:guangdong.level",
        "report:guangdong-filings",
        "deadline:guangdong:filing",
        "command:guangdong",
        "jurisdiction:guangdong",
    }
    assert contributions(off) <= contributions(on)


# --- the public API: what a plugin imports ---------------------------------------------------------


def core_imports(source: str) -> list[tuple[str, tuple[str, ...]]]:
    """``(module, names)`` of every import of the ledger's own packages in ``source``, wherever it
    stands (top level, ``TYPE_CHECKING`` blocks, functions)."""
    found: list[tuple[str, tuple[str, ...]]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(a.name, ()) for a in node.names if a.name.split(".")[0] in CORE]
        elif isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] in CORE):
            found.append(("." * node.level + (node.module or ""), tuple(a.name for a in node.names)))
    return found


def assert_public(imports: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Each import names a public package (``ledger``, ``projections``) and only what it exports."""
    for module, names in imports:
        assert module in PUBLIC, f"{module} is not the public API: import from ledger or projections"
        assert names, f"import {module}: name what you use (from {module} import …)"
        exported = set(PUBLIC[module].__all__)
        assert set(names) <= exported, f"{module} does not export {sorted(set(names) - exported)}"


def test_the_public_api_is_what_the_packages_export() -> None:
    for name, package in PUBLIC.items():
        assert package.__all__ == sorted(set(package.__all__), key=package.__all__.index), name
        missing = [n for n in package.__all__ if not hasattr(package, n)]
        assert missing == [], f"{name}.__all__ names what it does not define: {missing}"
    assert {"hookimpl", "Jurisdiction", "DecisionRecord", "Body", "Competence", "YearSchedule"} <= set(
        ledger_api.__all__
    )
    assert {"Finding", "Rule", "Deadline", "Facts", "Views", "Report", "open_views", "time_options"} <= set(
        projections.__all__
    )


def test_the_plugin_imports_only_the_public_api_as_written() -> None:
    found = core_imports(PLUGIN_FILE.read_text(encoding="utf-8"))
    assert {module for module, _ in found} == {"ledger", "projections"}
    assert_public(found)


PROBE = "ledger_guangdong_probe"


def test_the_plugin_imports_only_the_public_api_when_it_runs(
    ledger: tuple[str, LedgerApplication], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every import the plugin's code makes — loading, and running each hook, its rule, report and
    command on a real ledger — seen by a hook on ``__import__``, not only those written at the top."""
    seen: list[tuple[str, tuple[str, ...], int]] = []
    real_import = builtins.__import__

    def watching(
        name: str,
        globals: Mapping[str, object] | None = None,
        locals: Mapping[str, object] | None = None,
        fromlist: Sequence[str] | None = (),
        level: int = 0,
    ) -> ModuleType:
        if globals is not None and globals.get("__name__") == PROBE:
            seen.append((name, tuple(fromlist or ()), level))
        return real_import(name, globals, locals, fromlist or (), level)

    module = ModuleType(PROBE)
    module.__file__ = str(PLUGIN_FILE)
    monkeypatch.setitem(sys.modules, PROBE, module)
    monkeypatch.setattr(builtins, "__import__", watching)
    exec(compile(PLUGIN_FILE.read_text(encoding="utf-8"), str(PLUGIN_FILE), "exec"), module.__dict__)
    path, app = ledger
    plugin = module.Guangdong(tmp_path)
    assert plugin.ledger_jurisdictions()[0].code == "guangdong"
    assert plugin.ledger_reference_data()[0].exists()
    assert plugin.ledger_deadlines()[0].article == "GD-2021#2"
    views = Views(app)
    facts = views.facts_for("GD1", as_of=date(2021, 12, 31), known_at=views.position_at(None))
    assert [f.rule for rule in plugin.ledger_rules() for f in rule.check(facts)] == ["guangdong.level"]
    assert len(plugin.ledger_reports()[0].build(views, {"as-of": "2021-06-01"}).rows) == 1
    cli = click.Group("ledger")
    plugin.ledger_register_commands(cli=cli)
    result = CliRunner().invoke(cli, ["guangdong", "filings", "--as-of", "2021-06-01"], obj={"db": path, "app": app})
    assert result.exit_code == 0, result.output
    monkeypatch.undo()

    ours = [(name, names) for name, names, level in seen if level or name.split(".")[0] in CORE]
    assert sorted({name for name, _ in ours}) == ["ledger", "projections"]
    assert_public(ours)


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.S | re.M)


def test_the_docs_examples_import_only_the_public_api() -> None:
    """What docs/plugins.md shows a plugin author to import, they can: only the packages' exports."""
    blocks = python_blocks(DOCS.read_text(encoding="utf-8"))
    found = [
        (module, names)
        for block in blocks
        for module, names in core_imports(block)
        if module.split(".")[0] != "ledger_guangdong"  # the example's own package
    ]
    assert len(blocks) >= 8
    assert {"ledger", "projections"} <= {module for module, _ in found}
    assert_public(found)


HOOK = re.compile(r"^\| `(ledger_\w+)\(", re.M)


def test_every_hook_is_documented() -> None:
    """Each hook of ``ledger/hookspecs.py`` has its row in docs/plugins.md's table, and the table
    names no hook that does not exist."""
    specs = ast.parse((ROOT / "ledger" / "hookspecs.py").read_text(encoding="utf-8"))
    hooks = {
        node.name
        for node in specs.body
        if isinstance(node, ast.FunctionDef) and any(getattr(d, "id", None) == "hookspec" for d in node.decorator_list)
    }
    assert len(hooks) >= 12
    assert set(HOOK.findall(DOCS.read_text(encoding="utf-8"))) == hooks


def test_contributions_have_the_shape_the_hooks_declare(pm: pluggy.PluginManager) -> None:
    """The read-side hooks are typed by Protocols in core (``ledger.ContributedRule`` …), which
    ``projections``' classes satisfy: each built-in and third-party contribution is checked."""
    contributed: dict[type, list[Any]] = {
        ledger_api.ContributedRule: [r for rs in pm.hook.ledger_rules() for r in rs or ()],
        ledger_api.ContributedDeadline: [d for ds in pm.hook.ledger_deadlines() for d in ds or ()],
        ledger_api.ContributedReport: [r for rs in pm.hook.ledger_reports() for r in rs or ()],
        ledger_api.ContributedProjection: all_projections(pm),  # the built-in ones: no plugin adds one yet
    }
    for protocol, items in contributed.items():
        assert items, protocol
        assert all(isinstance(item, protocol) for item in items), protocol


@pytest.mark.parametrize("plugin", ["national", "hunan", "chongqing"])
def test_the_shipped_plugins_import_only_the_public_api(plugin: str) -> None:
    """The built-in plugins are written as a third party writes one: from ``ledger`` and
    ``projections`` only what they export, and of the plugins only their own package."""
    files = sorted((ROOT / "plugins" / plugin).glob("*.py"))
    found = [item for file in files for item in core_imports(file.read_text(encoding="utf-8"))]
    own = [(module, names) for module, names in found if module.split(".")[0] == "plugins"]
    assert all(module == f"plugins.{plugin}" or module.startswith(f"plugins.{plugin}.") for module, _ in own), own
    assert_public([item for item in found if item not in own])
