"""Two importers and a projection follower at once against one PostgreSQL ledger (docs/scaling.md).

    python bench/concurrency.py --decisions 100000 --db 'postgresql://postgres@127.0.0.1:5432/test?schema=bench_conc'

1. generates a decision file (``bench/generate.py``) and splits it: the reference part (catalogues,
   institutions, physicians, their first privileges) and the years of activity, divided between
   two files by institution (a correction goes with what it corrects);
2. imports the reference part, then starts ``ledger project --follow`` and, at the same moment,
   ``ledger import`` of each activity file in its own process;
3. samples, every 0.25 s, the head of the log and every projection's tracked position, and
   reports when each importer finished, how far the follower lagged, and when it had caught up;
4. checks the result: every decision recorded once, every projection at the head, the trail
   holding one row per decision.

The schema is dropped and recreated first, and dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run import _pg_connect, _prepare_pg, _schema  # noqa: E402

from ledger.storage import EVENTS_TABLE  # noqa: E402

ACTIVITY_STARTS = ("review.concluded",)


def split(source: Path, out: Path) -> tuple[Path, Path, Path, int]:
    """The reference prefix, and the rest divided in two by institution."""
    base, first, second = out / "reference.jsonl", out / "activity-1.jsonl", out / "activity-2.jsonl"
    owner: dict[str, int] = {}  # decision id -> which activity file holds it
    lines = 0
    with (
        source.open(encoding="utf-8") as f,
        base.open("w", encoding="utf-8") as b,
        first.open("w", encoding="utf-8") as f1,
        second.open("w", encoding="utf-8") as f2,
    ):
        files = (f1, f2)
        in_activity = False
        for line in f:
            lines += 1
            d = json.loads(line)
            if not in_activity and d["kind"] in ACTIVITY_STARTS:
                in_activity = True
            if not in_activity:
                b.write(line)
                continue
            target = d.get("corrects") or d.get("retracts")
            if target is not None:
                which = owner.get(target, 0)
            else:
                institution = d.get("institution") or ""
                which = sum(institution.encode()) % 2
            owner[d["id"]] = which
            files[which].write(line)
    return base, first, second, lines


def positions(url: str) -> tuple[int, dict[str, int]]:
    conn = _pg_connect(url)
    schema = _schema(url)
    head = conn.execute(f'SELECT COALESCE(MAX(notification_id), 0) FROM "{schema}".{EVENTS_TABLE}').fetchone()[0]
    try:
        tracked = dict(conn.execute(f'SELECT projection, position FROM "{schema}".ledger_tracking').fetchall())
    except Exception:  # the follower has not created it yet
        tracked = {}
    conn.close()
    return int(head), {k: int(v) for k, v in tracked.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", "-n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", required=True, help="postgresql://…?schema=NAME (dropped and recreated)")
    parser.add_argument("--workdir", default="/tmp/ledger-concurrency")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    ledger = str(Path(sys.executable).parent / "ledger")
    source = work / f"decisions-{args.decisions}-{args.seed}.jsonl"
    if not source.exists():
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench/generate.py"),
                "-n",
                str(args.decisions),
                "--seed",
                str(args.seed),
                "-o",
                str(source),
            ],
            check=True,
        )
    base, first, second, total = split(source, work)
    _prepare_pg(args.db)
    report: dict[str, Any] = {"decisions": total}
    started = time.perf_counter()
    subprocess.run([ledger, "--db", args.db, "import", str(base)], check=True, capture_output=True)
    report["reference_seconds"] = time.perf_counter() - started
    report["reference_lines"] = sum(1 for _ in base.open(encoding="utf-8"))

    follower = subprocess.Popen(
        [ledger, "--db", args.db, "project", "--follow", "--poll", "0.2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    t0 = time.perf_counter()
    importers = [
        subprocess.Popen(
            [ledger, "--db", args.db, "import", str(f)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        for f in (first, second)
    ]
    finished: dict[int, float] = {}
    samples: list[tuple[float, int, int]] = []  # (t, head, slowest projection)
    caught_up_at = None
    while True:
        now = time.perf_counter() - t0
        for k, p in enumerate(importers):
            if k not in finished and p.poll() is not None:
                finished[k] = now
        head, tracked = positions(args.db)
        slowest = min(tracked.values()) if tracked else 0
        samples.append((now, head, slowest))
        if len(finished) == len(importers) and tracked and slowest >= head:
            caught_up_at = now
            break
        if now > 3600:
            break
        time.sleep(0.25)
    follower.terminate()
    follower.wait(timeout=60)
    errors = [p.stderr.read() if p.stderr else "" for p in importers]
    report["importers"] = [
        {
            "file": str(f),
            "lines": sum(1 for _ in f.open(encoding="utf-8")),
            "exit": p.returncode,
            "seconds": finished.get(k),
            "stderr": errors[k].strip()[-400:],
        }
        for k, (f, p) in enumerate(zip((first, second), importers, strict=True))
    ]
    report["follower_caught_up_seconds"] = caught_up_at
    report["max_lag_records"] = max((head - slowest for _, head, slowest in samples), default=0)
    report["lag_samples"] = samples[:: max(1, len(samples) // 40)]
    head, tracked = positions(args.db)
    conn = _pg_connect(args.db)
    schema = _schema(args.db)
    trail_rows = conn.execute(f'SELECT COUNT(*) FROM "{schema}".view_trail').fetchone()[0]
    decisions = conn.execute(f'SELECT COUNT(*) FROM "{schema}".ledger_decisions').fetchone()[0]
    conn.close()
    report["head"] = head
    report["recorded"] = decisions
    report["trail_rows"] = trail_rows
    report["projections_at_head"] = all(v == head for v in tracked.values())
    report["total_seconds"] = time.perf_counter() - started
    print(json.dumps(report, indent=1, ensure_ascii=False))
    if not args.keep:
        _prepare_pg(args.db, drop_only=True)
    ok = all(p.returncode == 0 for p in importers) and report["projections_at_head"] and decisions == trail_rows
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
