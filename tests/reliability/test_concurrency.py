"""Concurrency (issue 6): several processes importing and recording into one ledger at once.

Eleven processes start together (they wait at a gate until all have started) against one SQLite
file or one PostgreSQL schema that already holds ``EXAMPLE_FILE``:

* three ``ledger import`` of files about institutions and physicians of their own;
* two ``ledger import`` of files about the *same* subject (cases of one institution's use of one
  technology, so both append to the same aggregate's versions);
* two ``ledger import`` of files sharing 100 identical decisions (same ids, same content);
* two ``ledger import`` of files that give the same id (``DUP-1``) different content;
* two processes recording decisions one transaction each (``LedgerApplication.record``) about the
  same institution as the conflicting files.

Then: every decision is recorded exactly once and none is lost; the conflicting pair resolves to
exactly one file recorded wholly and the other refused with a clear error naming the file, line and
field, none of its lines written; every subject's versions run 1, 2, 3… in log order with no gap
or repeat (the unique (originator_id, version) of the storage); every stored decision has the
content of the line it came from (no silent overwrite); ``verify`` passes; and the views the
processes caught up concurrently equal a rebuild from scratch.

Writers serialise on the storage's write lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL an EXCLUSIVE
lock of the events table), and each reads the subject's version inside its own transaction, so
racing writers never compute the same version. Should one do so anyway (a writer that read its
version outside the lock), the unique (originator_id, version) refuses it: the loser gets a
``ConcurrencyError`` and nothing of its transaction is written
(``test_a_stale_version_is_refused_not_overwritten``); a writer that cannot get the lock in time
gets a clear "busy" error (``test_a_writer_that_cannot_get_the_lock_fails_clearly``).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from reliability_support import decision_ids, event_count, open_ledger, views
from strategies import CLINIC, EXAMPLE_FILE, HOSPITAL, SURGEON, to_jsonl

from ledger import integrity
from ledger.decisions import from_json_dict
from ledger.errors import ConcurrencyError
from projections.runner import Runner
from projections.views import all_projections, catch_up

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
AUTHORITY = "湖南省卫生健康委员会"
GATE = r"""
import os, sys, time
gate = os.environ["RELIABILITY_GATE"]
def wait_at_gate():
    open(gate + "." + str(os.getpid()), "w").close()
    while not os.path.exists(gate):
        time.sleep(0.002)
"""
IMPORTER = (
    GATE
    + r"""
import cli
wait_at_gate()
sys.argv = ["ledger", *sys.argv[1:]]
cli.main()
"""
)
RECORDER = (
    GATE
    + r"""
import json
from ledger.application import LedgerApplication
from ledger.decisions import from_json_dict
from ledger.errors import ConcurrencyError
from projections.views import catch_up
url, path = sys.argv[1:3]
app = LedgerApplication.open(url)
decisions = [from_json_dict(json.loads(line)) for line in open(path, encoding="utf-8")]
wait_at_gate()
recorded = retries = 0
for d in decisions:
    for attempt in range(5):
        try:
            recorded += app.record(d, source=path).recorded
            break
        except ConcurrencyError:
            retries += 1
    else:
        raise SystemExit(f"{d.id}: still conflicting after 5 attempts")
catch_up(app)
app.close()
print(json.dumps({"recorded": recorded, "retries": retries}))
"""
)


def case(prefix: str, k: int, institution: str, physician: str) -> dict[str, Any]:
    day = date(2019, 5, 1) + timedelta(days=k)
    return {
        "id": f"{prefix}-{k:04d}",
        "kind": "case.performed",
        "effective": day.isoformat(),
        "by": institution,
        "institution": institution,
        "technology": "hunan:S14",
        "physician": physician,
        "case": f"{prefix}{k:06d}",
    }


def inspection(decision_id: str, institution: str, finding: str) -> dict[str, Any]:
    return {
        "id": decision_id,
        "kind": "inspection.recorded",
        "effective": "2022-06-01",
        "by": AUTHORITY,
        "institution": institution,
        "findings": [finding],
    }


def penalty(decision_id: str, amount: int) -> dict[str, Any]:
    return {
        "id": decision_id,
        "kind": "penalty.imposed",
        "effective": "2023-03-01",
        "by": AUTHORITY,
        "institution": HOSPITAL,
        "amount_yuan": amount,
        "reason": "未按期整改",
    }


def own_institution(i: int, cases: int) -> list[dict[str, Any]]:
    """A file about institution ``i`` and its physician alone."""
    institution, physician = f"4300{i:04d}X43010211A1001", f"11043029{i:07d}"
    return [
        {"id": f"W{i}-reg", "kind": "institution.registered", "effective": "2010-01-01", "by": "长沙市卫生健康委员会",
         "institution": institution, "name": f"并发示范医院{i}", "province": "湖南省", "city": "长沙市",
         "category": "医院", "level": "三级", "licensing_authority": "长沙市卫生健康委员会"},
        {"id": f"W{i}-doc", "kind": "physician.registered", "effective": "2011-01-01", "by": "长沙市卫生健康委员会",
         "physician": physician, "name": f"并发{i}", "institution": institution, "title": "主任医师"},
        *[case(f"W{i}", k, institution, physician) for k in range(cases)],
    ]  # fmt: skip


def workload(folder: Path) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """The files to import and the decisions to record one by one, by name."""
    shared = [inspection(f"S-{k:03d}", CLINIC, f"共同发现{k}") for k in range(100)]
    imports: dict[str, list[dict[str, Any]]] = {
        **{f"own-{i}": own_institution(i, 250) for i in range(3)},
        "same-subject-a": [case("A", k, HOSPITAL, SURGEON) for k in range(250)],
        "same-subject-b": [case("B", k, HOSPITAL, SURGEON) for k in range(250)],
        "overlap-x": [*shared[:50], *[inspection(f"X-{k:03d}", CLINIC, f"X{k}") for k in range(50)], *shared[50:]],
        "overlap-y": [*shared, *[inspection(f"Y-{k:03d}", CLINIC, f"Y{k}") for k in range(50)]],
        "conflict-p": [*[inspection(f"P-{k:03d}", HOSPITAL, f"P{k}") for k in range(50)], penalty("DUP-1", 1),
                       *[inspection(f"P-{k:03d}", HOSPITAL, f"P{k}") for k in range(50, 100)]],
        "conflict-q": [*[inspection(f"Q-{k:03d}", HOSPITAL, f"Q{k}") for k in range(50)], penalty("DUP-1", 2),
                       *[inspection(f"Q-{k:03d}", HOSPITAL, f"Q{k}") for k in range(50, 100)]],
    }  # fmt: skip
    records = {f"recorder-{j}": [penalty(f"R{j}-{k:03d}", 100 + k) for k in range(40)] for j in range(2)}
    for name, lines in {**imports, **records}.items():
        (folder / f"{name}.jsonl").write_bytes(to_jsonl(lines))
    return imports, records


def spawn(code: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_imports_and_records(ledger_url: str, tmp_path: Path) -> None:
    # The ledger exists before the writers start, as after `ledger init` (its tables, views, tree).
    with open_ledger(ledger_url) as app:
        app.import_lines(to_jsonl(EXAMPLE_FILE).splitlines(keepends=True), source="example")
        catch_up(app)
        integrity.sync(app)
    imports, records = workload(tmp_path)
    gate = str(tmp_path / "gate")
    env = {**os.environ, "RELIABILITY_GATE": gate}
    env.pop("LEDGER_DB", None)
    procs = {
        **{n: spawn(IMPORTER, ["--db", ledger_url, "import", str(tmp_path / f"{n}.jsonl")], env) for n in imports},
        **{n: spawn(RECORDER, [ledger_url, str(tmp_path / f"{n}.jsonl")], env) for n in records},
    }
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("gate.*"))) < len(procs) and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs.values()):
            break  # one died before the gate: its output says why (below)
        time.sleep(0.01)
    Path(gate).touch()
    out = {n: p.communicate(timeout=120) for n, p in procs.items()}
    codes = {n: p.returncode for n, p in procs.items()}
    for name, (stdout, stderr) in out.items():
        assert "Traceback" not in stdout + stderr, f"{name}:\n{stderr}"

    # The conflicting pair: one file recorded, the other refused whole, with the line and field.
    conflict = sorted(n for n in ("conflict-p", "conflict-q") if codes[n] != 0)
    assert len(conflict) == 1, {n: out[n][1] for n in ("conflict-p", "conflict-q")}
    loser = conflict[0]
    assert codes[loser] == 3
    assert out[loser][1].startswith(
        f"Error: {tmp_path / loser}.jsonl, line 51, field 'id': decision 'DUP-1' is already recorded"
    ), out[loser][1]
    for name, code in codes.items():
        if name != loser:
            assert code == 0, f"{name} exited {code}:\n{out[name][1]}"
    assert sum(json.loads(out[n][0])["recorded"] for n in records) == sum(len(v) for v in records.values())

    expected: dict[str, Any] = {d["id"]: d for d in EXAMPLE_FILE}
    source: dict[str, str] = {}
    for name, lines in {**imports, **records}.items():
        if name != loser:
            expected.update({d["id"]: d for d in lines})
            source.update({d["id"]: name for d in lines if d["id"] not in source})
    digests = {i: from_json_dict(d).digest() for i, d in expected.items()}
    with open_ledger(ledger_url) as app:
        ids = decision_ids(app)
        assert len(ids) == len(set(ids)), "a decision was recorded twice"
        assert set(ids) == set(expected), (
            f"lost: {sorted(set(expected) - set(ids))[:5]}, unexpected: {sorted(set(ids) - set(expected))[:5]}"
        )
        assert event_count(app) == len(ids)
        # No silent overwrite: each event holds its own line's content, each subject's versions
        # follow one another in log order.
        versions: dict[Any, list[int]] = defaultdict(list)
        for _, event in app.notifications():
            record = app.to_record(event)
            assert record.digest() == digests[record.id], f"{record.id} holds other content than its line"
            versions[event.originator_id].append(event.originator_version)
        for subject, seen in versions.items():
            assert seen == list(range(1, len(seen) + 1)), f"versions of {subject}: {seen[:10]}…"
        same_subject = app.history(f"use:{HOSPITAL}|hunan:S14")
        assert {e.decision_id for e in same_subject} >= {d["id"] for d in imports["same-subject-a"]} | {
            d["id"] for d in imports["same-subject-b"]
        }
        integrity.sync(app)
        report = integrity.verify(app)
        assert report.ok, report.message()
        # The views the writers caught up concurrently are those of a rebuild from scratch.
        catch_up(app)
        concurrent = views(app)
        Runner(app, all_projections(app.plugins)).rebuild()
        assert views(app) == concurrent
    # How interleaved the writers were: changes of writer along the log.
    writers = [source[i] for i in ids if i in source]
    switches = sum(a != b for a, b in itertools.pairwise(writers))
    print(
        f"\nconcurrency figures: {len(procs)} processes, {len(ids)} decisions checked, "
        f"{len(versions)} subjects' versions checked, {switches} changes of writer along the log, retries: "
        f"{sum(json.loads(out[n][0])['retries'] for n in records)}"
    )


def test_a_stale_version_is_refused_not_overwritten(ledger_url: str) -> None:
    """A writer that computed a subject's next version before another writer took it: the unique
    (originator_id, version) refuses the insert; the loser gets a ConcurrencyError and nothing of
    its transaction is written; the winner's event is unchanged."""
    with open_ledger(ledger_url) as app:
        app.import_lines(to_jsonl(EXAMPLE_FILE).splitlines(keepends=True), source="example")
        row = app.store.decision_rows(ids=["EX-09"])[0]
        winner = app.store.select_events(row.originator_id, gt=row.originator_version - 1, lte=row.originator_version)
        before, ids = app.position(), decision_ids(app)
        stale = dataclasses.replace(row, decision_id="STALE-1")
        fresh = app.store.decision_rows(ids=["EX-27"])[0]
        fresh_event = app.store.select_events(fresh.originator_id)
        next_version = fresh.originator_version + 1
        with (
            pytest.raises(ConcurrencyError, match="another writer recorded a decision about the same subject first"),
            app.store.write() as session,
        ):
            # A first batch that would be fine on its own, then the stale one: all rolled back.
            session.append(
                [dataclasses.replace(fresh_event[-1], originator_version=next_version)],
                [dataclasses.replace(fresh, decision_id="FRESH-1", originator_version=next_version)],
            )
            session.append(winner, [stale])
        assert app.position() == before
        assert decision_ids(app) == ids
        assert (
            app.store.select_events(row.originator_id, gt=row.originator_version - 1, lte=row.originator_version)
            == winner
        )


def test_a_writer_that_cannot_get_the_lock_fails_clearly(
    ledger_url: str, backend: str, tmp_path: Path, new_ledger_url: Callable[[], str]
) -> None:
    """A writer kept waiting longer than its lock timeout gets "busy" (exit 6), never a hang or a
    traceback, and writes nothing."""
    path = tmp_path / "one.jsonl"
    path.write_bytes(to_jsonl(EXAMPLE_FILE))
    env = {**os.environ, "LEDGER_LOCK_TIMEOUT": "1", "POSTGRES_LOCK_TIMEOUT": "1"}
    env.pop("LEDGER_DB", None)
    with open_ledger(ledger_url) as app:
        catch_up(app)  # the ledger's tables exist before the lock is taken
        with app.store.write():  # hold the writers' lock until the other writer has given up
            proc = spawn(
                IMPORTER.replace("wait_at_gate()\n", ""),
                ["--db", ledger_url, "import", str(path)],
                {**env, "RELIABILITY_GATE": "-"},
            )
            _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 6, stderr
        assert "Traceback" not in stderr
        # The import's own error, not a later one of the views' catch-up (also kept waiting).
        assert stderr.startswith("Error: the ledger is busy (another writer holds it)"), stderr
        assert app.position() == 0
