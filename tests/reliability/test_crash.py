"""Crash safety (issue 6): ``ledger import`` and ``ledger rebuild`` SIGKILLed at random moments.

A few thousand generated decisions (``bench/generate.py``, else copies of ``EXAMPLE_FILE``) are
split into files. First an uninterrupted run imports them one by one into a fresh ledger and keeps
the views after each file. Then, on another fresh ledger, processes running the real CLI
(``cli.main``) import the next files, or rebuild the views, and are killed with ``SIGKILL`` at a
moment drawn by a seeded RNG. After every kill:

* the ledger holds each file wholly or not at all: its decisions are exactly those of the first
  *k* files, in file order, each once (the index and the events table agree);
* ``ledger verify`` passes (``integrity.sync`` then ``integrity.verify(...).ok``);
* the projections catch up to exactly the views of the uninterrupted run after the same *k* files.

A killed import is simply launched again (the next launch imports from the first file missing).
Whenever every file is in, and at the end, the import of every file is run again, uninterrupted:
it completes the ledger with no duplicate, and the views equal those of the uninterrupted run; the
kills then go on against a fresh ledger.

The child processes report their phases on stderr (``@begin <file>`` as an import transaction
opens, ``@committed <file>`` once it has committed, ``@rebuild``/``@caught-up``), timestamped with
the system-wide monotonic clock. The reference run's timings aim about half the kills inside an
import transaction (or inside a rebuild); the markers a killed child left tell where each kill
landed. The figures (kills by phase) are printed with ``-s`` and quoted in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from reliability_support import (
    decision_ids,
    event_count,
    open_ledger,
    tracked_positions,
    views,
    wait_for_sessions_to_end,
)
from strategies import CLINIC, EXAMPLE_FILE, HOSPITAL, RESIDENT, SURGEON, to_jsonl

from ledger import integrity
from projections.views import catch_up

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SEED = 20190422
DECISIONS = 4000
FILES = 4
KILLS = 24
"""Kills per database; every launch is killed unless it finished before its moment came."""

# The CLI, with phase markers: the same entry point as the ``ledger`` script.
CHILD = r"""
import sys, time
from ledger.application import LedgerApplication
from projections.runner import Runner

def mark(what):
    sys.stderr.write(f"@{time.monotonic():.6f} {what}\n")
    sys.stderr.flush()

_import = LedgerApplication.import_lines
def import_lines(self, lines, *, source, progress=None):
    mark(f"begin {source}")
    result = _import(self, lines, source=source, progress=progress)
    mark(f"committed {source}")
    return result
LedgerApplication.import_lines = import_lines

_rebuild = Runner.rebuild
def rebuild(self, names=None):
    mark("rebuild")
    return _rebuild(self, names)
Runner.rebuild = rebuild

_catch_up = Runner.catch_up
def catch_up(self, names=None, *, batch=1000):
    read = _catch_up(self, names, batch=batch)
    mark("caught-up")
    return read
Runner.catch_up = catch_up

import cli
sys.argv = ["ledger", *sys.argv[1:]]
cli.main()
"""


# --- the decisions ----------------------------------------------------------------------------


def scaled_example(n: int) -> list[str]:
    """About ``n`` lines: ``EXAMPLE_FILE`` once, then copies about other institutions and people."""
    lines = to_jsonl(EXAMPLE_FILE).decode("utf-8").splitlines()
    out = list(lines)
    copy = 0
    while len(out) < n:
        copy += 1
        for line in lines:
            if json.loads(line)["kind"] == "technology.listed":
                continue  # the catalogue stays the one of the first copy
            text = (
                line.replace('"EX-', f'"C{copy:04d}-')
                .replace(HOSPITAL, f"{copy:08d}X43010211A1001")
                .replace(CLINIC, f"{copy:08d}243030211A1001")
                .replace(SURGEON, f"1104301{copy:08d}")
                .replace(RESIDENT, f"1104302{copy:08d}")
                .replace("KEYHOLDER-EX", f"KEYHOLDER-{copy}")
            )
            out.append(text)
    return out[:n]


@dataclass
class Corpus:
    files: list[Path]
    ids: list[list[str]]
    """Each file's decision ids, in file order."""
    source: str

    def prefix(self, k: int) -> list[str]:
        return [i for ids in self.ids[:k] for i in ids]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    folder = tmp_path_factory.mktemp("crash-corpus")
    generator = ROOT / "bench" / "generate.py"
    lines: list[str] = []
    source = f"bench/generate.py -n {DECISIONS} --seed {SEED}"
    if generator.exists():
        out = folder / "all.jsonl"
        done = subprocess.run(
            [sys.executable, str(generator), "-n", str(DECISIONS), "--seed", str(SEED), "-o", str(out)],
            capture_output=True,
            timeout=120,
            check=False,
        )
        if done.returncode == 0:
            lines = [line for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        lines, source = scaled_example(DECISIONS), f"{DECISIONS} lines of EXAMPLE_FILE copies"
    size = -(-len(lines) // FILES)
    files, ids = [], []
    for k in range(FILES):
        part = lines[k * size : (k + 1) * size]
        path = folder / f"part-{k + 1}.jsonl"
        path.write_text("".join(line + "\n" for line in part), encoding="utf-8")
        files.append(path)
        ids.append([json.loads(line)["id"] for line in part])
    everything = [i for part in ids for i in part]
    assert len(set(everything)) == len(everything), "the corpus repeats an id"
    return Corpus(files, ids, source)


# --- running the CLI --------------------------------------------------------------------------


@dataclass
class Run:
    """One child process: its markers (seconds after spawn), exit code, whether it was killed."""

    args: list[str]
    markers: list[tuple[float, str]] = field(default_factory=list)
    returncode: int = 0
    killed: bool = False
    stderr: str = ""

    def at(self, what: str) -> float | None:
        return next((t for t, m in self.markers if m == what), None)

    def phase(self) -> str:
        """Where a kill landed, from the markers the child wrote before it died."""
        seen = [m for _, m in self.markers]
        if self.args[0] == "rebuild":
            if "rebuild" not in seen:
                return "rebuild: before it started"
            return "rebuild: while rebuilding" if "caught-up" not in seen else "rebuild: after it finished"
        begun = [m for m in seen if m.startswith("begin ")]
        committed = [m for m in seen if m.startswith("committed ")]
        if not begun:
            return "import: before the transaction (start-up, opening the ledger)"
        if len(begun) > len(committed):
            return "import: inside an import transaction"
        return "import: after a commit (catching up the views, or between files)"


def launch(url: str, args: Sequence[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], float]:
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, "--db", url, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, started


def finish(proc: subprocess.Popen[str], started: float, run: Run) -> Run:
    _, err = proc.communicate(timeout=120)
    run.returncode = proc.returncode
    run.stderr = err
    for line in err.splitlines():
        if line.startswith("@"):
            stamp, _, what = line[1:].partition(" ")
            run.markers.append((float(stamp) - started, what))
    return run


def run_to_end(url: str, args: Sequence[str], env: dict[str, str]) -> Run:
    proc, started = launch(url, args, env)
    run = finish(proc, started, Run(list(args)))
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    return run


def run_and_kill(url: str, args: Sequence[str], delay: float, env: dict[str, str]) -> Run:
    proc, started = launch(url, args, env)
    run = Run(list(args))
    try:
        proc.wait(timeout=max(0.0, started + delay - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        run.killed = True
    finish(proc, started, run)
    if not run.killed:
        assert run.returncode == 0, run.stderr
    return run


# --- the test ---------------------------------------------------------------------------------


@dataclass
class Reference:
    views: list[dict[str, list[tuple[str, ...]]]]
    """The views after the first k files, k = 0 … FILES."""
    imports: list[Run]
    rebuilds: list[Run]
    """``ledger rebuild`` after the first k files, k = 1 … FILES (index k - 1)."""


def reference_run(url: str, corpus: Corpus, env: dict[str, str]) -> Reference:
    with open_ledger(url) as app:
        catch_up(app)
        states = [views(app)]
    imports, rebuilds = [], []
    for path in corpus.files:
        imports.append(run_to_end(url, ["import", str(path)], env))
        with open_ledger(url) as app:
            states.append(views(app))
        rebuilds.append(run_to_end(url, ["rebuild"], env))
        with open_ledger(url) as app:
            assert views(app) == states[-1], "a rebuild changed the views"
    return Reference(states, imports, rebuilds)


def check(url: str, corpus: Corpus, reference: Reference, before: int, at_most: int) -> int:
    """The ledger after a kill; returns how many files it now holds."""
    with open_ledger(url) as app:
        ids = decision_ids(app)
        counts = [len(corpus.prefix(k)) for k in range(FILES + 1)]
        assert len(ids) in counts, f"{len(ids)} decisions: not a whole number of files ({counts})"
        k = counts.index(len(ids))
        assert before <= k <= at_most, f"{k} files in the ledger, expected {before}…{at_most}"
        assert ids == corpus.prefix(k), "the ledger's decisions are not those of the first files, once each"
        assert event_count(app) == len(ids), "the events and the decision index disagree"
        if app.store.__class__.__name__.startswith("SQLite"):
            assert app.position() == len(ids)
        integrity.sync(app)
        report = integrity.verify(app)
        assert report.ok, report.message()
        assert report.records == len(ids)
        catch_up(app)
        assert set(tracked_positions(app).values()) == {app.position()}
        assert views(app) == reference.views[k], f"the views caught up differ from the uninterrupted run's ({k} files)"
    return k


def complete(url: str, corpus: Corpus, reference: Reference, env: dict[str, str]) -> None:
    """The import, run again to the end, completes the ledger: every file once, nothing twice."""
    run_to_end(url, ["import", *map(str, corpus.files)], env)
    check(url, corpus, reference, FILES, FILES)


def test_kill_import_and_rebuild(
    backend: str, new_ledger_url: Callable[[], str], corpus: Corpus, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(f"{SEED}-{backend}")
    env = dict(os.environ)
    env.pop("LEDGER_DB", None)
    admin: Any = request.getfixturevalue("postgres_server").conn if backend == "postgres" else None

    reference = reference_run(new_ledger_url(), corpus, env)
    url = new_ledger_url()
    phases: Counter[str] = Counter()
    k = launches = kills = rounds = 0
    while kills < KILLS:
        if k == FILES:  # every file is in: start again on a fresh ledger
            complete(url, corpus, reference, env)
            url, k, rounds = new_ledger_url(), 0, rounds + 1
        launches += 1
        if launches % 3 or k == 0:  # two imports, then a rebuild (of something)
            n = min(FILES - k, rng.choice((1, 1, 2)))
            args = ["import", *map(str, corpus.files[k : k + n])]
            timings = reference.imports[k : k + n]
            # Half the kills aimed inside the (first) import transaction, half anywhere.
            begin, commit = timings[0].at(f"begin {args[1]}"), timings[0].at(f"committed {args[1]}")
            assert begin is not None and commit is not None
            end = begin + sum((r.at("caught-up") or 0.0) - (r.at(f"begin {r.args[1]}") or 0.0) for r in timings)
            delay = rng.uniform(begin, commit) if rng.random() < 0.5 else rng.uniform(0.0, end * 1.1)
        else:
            n = 0
            args = ["rebuild"]
            start, done = reference.rebuilds[k - 1].at("rebuild"), reference.rebuilds[k - 1].at("caught-up")
            assert start is not None and done is not None
            # Half the kills aimed while the views are being rebuilt, half anywhere.
            delay = rng.uniform(start, done) if rng.random() < 0.5 else rng.uniform(0.0, done * 1.1)
        name = f"crash-{uuid.uuid4().hex[:12]}"
        run = run_and_kill(url, args, delay, {**env, "PGAPPNAME": name})
        if admin is not None:
            wait_for_sessions_to_end(admin, name)
        if run.killed:
            kills += 1
            phases[run.phase()] += 1
        k_before = k
        k = check(url, corpus, reference, k, k + n)
        if run.killed and n:
            phases[f"import killed with {k - k_before} of its {n} file(s) recorded"] += 1
    complete(url, corpus, reference, env)

    figures = {
        "backend": backend,
        "corpus": corpus.source,
        "decisions": len(corpus.prefix(FILES)),
        "ledgers": rounds + 1,
        "launches": launches,
        "kills": kills,
        "phases": dict(sorted(phases.items())),
    }
    print(f"\ncrash figures: {json.dumps(figures, ensure_ascii=False, indent=1)}")
