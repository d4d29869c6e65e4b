"""The transparency log's steps of ``bench/run.py`` alone (and the checkpoint's time), for a quick look.

    python bench/tlog.py --decisions 100000 --workdir /tmp/tlog-bench
    python bench/tlog.py --decisions 100000 --json

Steps, each in its own subprocess so that its peak resident memory is its own (SQLite only):

import        ``bench/run.py``'s import step: the generated decisions into a fresh ledger (the input)
checkpoint    the tree synced and one checkpoint signed (``ledger checkpoint``), s
tiles         ``ledger.integrity.tiles_out.write_tiles`` into an empty folder: every hash tile and
              entry bundle, then the checkpoint, records/s
raw-sha256    ``bench/run.py``'s baseline: the same records selected and each hashed once, records/s
follow        ``ledger.follow.follow`` from that folder into an empty ledger: checkpoint verified,
              every entry checked against its tile, stored with its index row, tree synced, records/s
floor-import  ``bench/run.py``'s floor: the import's own writes alone (records and index rows), records/s

Targets (docs/transparency.md): tiles ≥ 0.5× raw SHA-256, follow ≥ 0.5× the import's floor, memory flat.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    CHECKPOINT_KEY,
    _remove_sqlite,
    _rss_mb,
    step_floor_import,
    step_follow,
    step_import,
    step_raw_sha256,
    step_tiles,
)


def step_checkpoint(url: str, workdir: str) -> dict[str, Any]:
    from ledger import integrity
    from ledger.application import LedgerApplication

    key = Path(workdir) / CHECKPOINT_KEY
    if not key.exists():
        integrity.keygen(key, "medtech-ledger-bench")
    app = LedgerApplication.open(url)
    try:
        started = time.perf_counter()
        integrity.checkpoint(app, integrity.load_signer_key(key))
        seconds = time.perf_counter() - started
        records = integrity.tree_state(app).size
    finally:
        app.close()
    return {"records": records, "seconds": seconds, "rate": records / seconds}


STEPS: dict[str, Callable[..., dict[str, Any]]] = {
    "import": step_import,
    "checkpoint": step_checkpoint,
    "tiles": step_tiles,
    "raw-sha256": step_raw_sha256,
    "follow": step_follow,
    "floor-import": step_floor_import,
}


def child(argv: Sequence[str]) -> int:
    name = argv[argv.index("--step") + 1]
    result = STEPS[name](**json.loads(argv[argv.index("--args") + 1]))
    result["peak_rss_mb"] = _rss_mb()
    print(json.dumps(result))
    return 0


def _run_step(name: str, **kwargs: Any) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--step", name, "--args", json.dumps(kwargs)]
    print(f"… {name}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"step {name} failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--step" in argv:
        return child(argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", "-n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", help="keep the files here (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tlog-bench-") as temp:
        workdir = Path(args.workdir or temp)
        workdir.mkdir(parents=True, exist_ok=True)
        file = workdir / f"decisions-{args.decisions}-{args.seed}.jsonl"
        if not file.exists():
            generate = [sys.executable, str(ROOT / "bench/generate.py"), "--decisions", str(args.decisions)]
            subprocess.run([*generate, "--seed", str(args.seed), "-o", str(file)], check=True)
        url = str(workdir / "ledger.sqlite")
        _remove_sqlite(url)
        steps = {"import": _run_step("import", url=url, file=str(file))}
        for name in ("checkpoint", "tiles", "raw-sha256", "follow", "floor-import"):
            kwargs = {"url": url} if name == "raw-sha256" else {"url": url, "workdir": str(workdir)}
            steps[name] = _run_step(name, **kwargs)
    ratios = {
        "tiles / raw-sha256": steps["tiles"]["rate"] / steps["raw-sha256"]["rate"],
        "follow / floor-import": steps["follow"]["rate"] / steps["floor-import"]["rate"],
    }
    if args.json:
        print(json.dumps({"decisions": args.decisions, "steps": steps, "ratios": ratios}))
        return 0
    print(f"{'step':<14}{'records':>10}{'seconds':>10}{'records/s':>12}{'peak RSS MB':>13}")
    for name, step in steps.items():
        records = step.get("records", step.get("decisions", 0))
        rate, peak = step.get("rate", 0.0), step["peak_rss_mb"]
        print(f"{name:<14}{records:>10}{step['seconds']:>10.2f}{rate:>12,.0f}{peak:>13.0f}")
    for name, ratio in ratios.items():
        print(f"{name:<24}{ratio:>6.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
