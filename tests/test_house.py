"""The house's own checks are wired where they are promised: CI and pre-commit run one list of
static checks (``.ci/checks``), before the tests; hypothesis settings come from one place."""

from __future__ import annotations

import ast
import os
import re
import tomllib
from pathlib import Path

from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_static_checks_before_the_tests() -> None:
    run = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert run.index(".ci/checks") < run.index('bash -c "$test_command"')


def test_the_checks_are_ruff_format_mypy_and_the_import_contracts() -> None:
    checks = (ROOT / ".ci" / "checks").read_text(encoding="utf-8")
    for command in ('ruff" check .', 'ruff" format --check .', 'mypy"', 'lint-imports"'):
        assert command in checks, command


def test_pre_commit_runs_the_same_checks() -> None:
    config = (ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    assert re.search(r"^\s+entry: \.ci/checks$", config, re.MULTILINE)


def test_the_import_contracts_cover_every_layer_and_every_plugin() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    contracts = {c["type"]: c for c in config["contracts"]}
    assert contracts["layers"]["layers"] == ["plugins", "projections", "ledger"]
    shipped = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").exists())
    assert sorted(m.removeprefix("plugins.") for m in contracts["independence"]["modules"]) == shipped


def test_hypothesis_settings_come_from_the_profiles_in_conftest() -> None:
    expected = os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
    assert settings.default == settings.get_profile(expected)
    assert settings.default.deadline is None


def test_no_test_file_silences_every_health_check() -> None:
    offenders = [
        p.name
        for p in (ROOT / "tests").rglob("*.py")
        if p.name != "test_house.py" and "list(HealthCheck)" in p.read_text(encoding="utf-8")
    ]
    assert offenders == []


PRODUCT = [p for top in ("ledger", "projections", "plugins") for p in sorted((ROOT / top).rglob("*.py"))]
MAX_MODULE_LINES = 600


def test_no_product_module_is_over_600_lines() -> None:
    """One module per concern: a module past this holds several (cli.py, the click app, aside)."""
    long = {str(p.relative_to(ROOT)): n for p in PRODUCT if (n := len(p.read_text("utf-8").splitlines())) > 600}
    assert long == {}


FIGURE = re.compile(r"\b\d[\d,.]*\s?(?:µs|ms)\b|\b\d[\d,.]*\s?(?:decisions|records|rows|events)/s\b")
ISSUE = re.compile(r"\bissues? #?\d+", re.IGNORECASE)  # "#24" alone is an article of MTM-2018


def test_code_cites_articles_not_issue_numbers_or_measured_figures() -> None:
    """Figures go stale in code; they live in docs/performance.md. Issue numbers cannot be looked up."""
    found = []
    for path in [*PRODUCT, ROOT / "cli.py"]:
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if ISSUE.search(line) or (FIGURE.search(line) and "patience" not in line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


def test_complexity_is_bounded_by_ruff() -> None:
    lint = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["ruff"]["lint"]
    assert "C90" in lint["select"] and lint["mccabe"]["max-complexity"] == 15


def _marked_slow(decorators: list[ast.expr]) -> bool:
    return any("slow" in ast.unparse(d) for d in decorators)


def test_tests_that_start_processes_are_marked_slow() -> None:
    """``pytest -m "not slow"`` is the quick loop: it must not start processes."""
    unmarked = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        if path.name == "test_house.py":  # names the pattern it looks for
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(
            isinstance(n, ast.Assign) and "pytestmark" in ast.unparse(n) and "slow" in ast.unparse(n.value)
            for n in tree.body
        ):
            continue
        spawning = {
            n.name
            for n in tree.body
            if isinstance(n, ast.FunctionDef) and not n.name.startswith("test_") and "subprocess." in ast.unparse(n)
        }
        calls = re.compile(r"subprocess\.|" + "|".join(rf"(?<!\w){name}\(" for name in spawning or {"(?!)"}))
        unmarked += [
            f"{path.relative_to(ROOT)}::{n.name}"
            for n in tree.body
            if isinstance(n, ast.FunctionDef)
            and n.name.startswith("test_")
            and calls.search(ast.unparse(n))
            and not _marked_slow(n.decorator_list)
        ]
    assert unmarked == []
