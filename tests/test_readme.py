"""The README's two commands, as a new user runs them: real processes, not in-process calls."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_commands() -> list[str]:
    """The shell commands of the README's "Two commands" section, in order."""
    section = README.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section, flags=re.S)


def test_readme_has_exactly_two_set_up_commands_near_the_top() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    assert README.index("## Two commands") < 1500
    assert "ledger" in commands[0] and "demo" in commands[0]
    assert "pytest" in commands[1]


@pytest.mark.slow
def test_ci_runs_the_readmes_test_command() -> None:
    """`.ci/run` extracts the second command from the README, so the two cannot drift apart."""
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    extracted = subprocess.run(
        ["bash", "-c", re.search(r"test_command=\$\((.+?)\)\n", script, flags=re.S).group(1)],  # type: ignore[union-attr]
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert extracted == readme_commands()[1]


def _ledger_executable() -> str:
    """The console script installed beside this interpreter (what the README's command runs)."""
    candidate = Path(sys.executable).parent / "ledger"
    found = str(candidate) if candidate.exists() else shutil.which("ledger")
    assert found, "the `ledger` console script is not installed: pip install -e ."
    return found


@pytest.mark.slow
def test_the_demo_command_runs_as_a_process(tmp_path: Path) -> None:
    """The main job of README command 1: `ledger --db FILE demo` on embedded SQLite."""
    demo = readme_commands()[0].split("&&")[-1].strip()
    args = demo.split()[1:]  # drop the path of the console script; keep its arguments
    args[args.index("--db") + 1] = str(tmp_path / "demo-ledger.sqlite")
    env = {**os.environ, "LEDGER_DB": "", "PYTHONIOENCODING": "utf-8"}
    env.pop("LEDGER_DISABLE_PLUGINS", None)
    done = subprocess.run(
        [_ledger_executable(), *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "hunan:S14" in done.stdout and "人工关节置换技术" in done.stdout  # Hunan's catalogue (HN-2018)
    assert "HN-2019-0021" in done.stdout  # a trail
    assert "Traceback" not in done.stderr
    again = subprocess.run(
        [_ledger_executable(), *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert again.returncode == 0 and "0 recorded" in again.stderr  # idempotent: nothing recorded twice


@pytest.mark.slow
def test_bad_input_exits_non_zero_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "X-1", "kind": "institution.registered", "effective": "2019-02-30"}\n', encoding="utf-8")
    done = subprocess.run(
        [_ledger_executable(), "--db", str(tmp_path / "l.sqlite"), "import", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert f"{bad}, line 1, field 'effective'" in done.stderr
    assert "Traceback" not in done.stderr
