"""``ledger serve`` under load: a real server process, a bounded load generator on loopback, and
the same queries in-process in the same run.

    python bench/serve.py --decisions 1000000                  # SQLite, in a temporary folder
    python bench/serve.py --decisions 1000000 --db 'postgresql://postgres@127.0.0.1:5432/test?schema=bench_serve'
    python bench/serve.py --decisions 100000 --json            # one JSON object instead of the table
    python bench/serve.py --db ledger.sqlite --reuse           # a ledger built before (checkpointed)

The ledger is built as a user builds one: ``bench/generate.py`` writes N decisions, ``ledger import``
records them and catches the views up, ``ledger checkpoint`` signs the tree. Then, for each query
(the disclosure of a province, an institution's trail with its findings, a decision's proof) and
each number of concurrent clients (1, 8, 32), the load generator sends a fixed number of requests
or stops at a time limit, whichever comes first; every client is a thread with one keep-alive
connection, and no request carries ``If-None-Match`` (each is answered from the database). Latency
is per request (p50/p99), throughput is requests answered over the cell's wall time. The same
queries run in-process (``projections.queries``/``ledger.integrity`` and the JSON encoding, no HTTP)
one at a time for the baseline. The server's resident memory (its process and its workers) is
sampled every 0.25 s over the whole run; "flat" compares the last sample with the first after a
warm-up pass that asks every subject once (caches and connections filled).

Targets: p99 < 50 ms at 32 clients for disclosure and trail; served throughput ≥ 0.5× in-process;
server memory flat (last sample within 10% of the first after warm-up).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
LEDGER = str(Path(sys.executable).with_name("ledger"))
QUERIES = ("disclosure (province)", "trail (institution, findings)", "proof")


def _pg(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def _ledger(db: str, *args: str) -> str:
    done = subprocess.run([LEDGER, "--db", db, *args], capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"ledger {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def build(db: str, decisions: int, seed: int, workdir: Path) -> dict[str, float]:
    """A ledger of ``decisions`` generated decisions, views caught up, the tree checkpointed."""
    times: dict[str, float] = {}
    file = workdir / f"decisions-{decisions}-{seed}.jsonl"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "bench/generate.py"), "-n", str(decisions), "--seed", str(seed), "-o", str(file)],
        check=True,
    )
    times["generate_s"] = time.perf_counter() - started
    started = time.perf_counter()
    _ledger(db, "import", str(file))
    times["import_s"] = time.perf_counter() - started
    key = workdir / "signer.key"
    _ledger(db, "keygen", "-o", str(key))
    started = time.perf_counter()
    _ledger(db, "checkpoint", "--key", str(key))
    times["checkpoint_s"] = time.perf_counter() - started
    return times


def subjects(db: str, count: int, seed: int) -> dict[str, list[Any]]:
    """What the clients ask about: provinces; institutions drawn uniformly; decisions drawn
    uniformly from those a checkpoint covers (and the ledger's position, for the report)."""
    from ledger import integrity
    from projections.api.store import open_readonly

    rng = random.Random(seed)
    app, views = open_readonly(db)
    try:
        with views.db.transaction(write=False) as c:
            table = views.db.table("view_institutions")
            institutions = sorted(r[0] for r in c.execute(f"SELECT DISTINCT key FROM {table}").fetchall())
        covered = max(cp.size for cp in integrity.stored_checkpoints(app))
        position = app.position()
        positions = [rng.randrange(1, covered + 1) for _ in range(count)]
        ids = [next(app.records(after=p - 1, limit=1)).record.id for p in positions]
    finally:
        app.close()
    return {
        "province": [("hunan", "chongqing")[k % 2] for k in range(count)],
        "institution": [rng.choice(institutions) for _ in range(count)],
        "decision": ids,
        "position": [position],
    }


def paths(picked: dict[str, list[str]]) -> dict[str, list[str]]:
    return {
        QUERIES[0]: [f"/disclosure?province={p}" for p in picked["province"]],
        QUERIES[1]: [f"/trail?institution={quote(i)}" for i in picked["institution"]],
        QUERIES[2]: [f"/proof/{quote(d)}" for d in picked["decision"]],
    }


def in_process(db: str, picked: dict[str, list[str]], requests: int, limit: float) -> dict[str, dict[str, float]]:
    """The same questions through the same code the server calls, JSON included, one at a time."""
    from ledger import canonical, integrity
    from projections import queries
    from projections.api.store import open_readonly

    app, views = open_readonly(db)
    calls: dict[str, Callable[[int], Any]] = {
        QUERIES[0]: lambda k: canonical.dumps(queries.disclosure(views, picked["province"][k]).to_json()),
        QUERIES[1]: lambda k: canonical.dumps(queries.trail(views, institution=picked["institution"][k]).to_json()),
        QUERIES[2]: lambda k: integrity.dump_bundle(integrity.prove(app, picked["decision"][k], sync_first=False)),
    }
    out = {}
    try:
        for name, call in calls.items():
            call(0)  # warm: calendars, rules, catalogue lookups load once
            times, started = [], time.perf_counter()
            for k in range(requests):
                t = time.perf_counter()
                call(k % len(picked["province"]))
                times.append((time.perf_counter() - t) * 1000)
                if time.perf_counter() - started > limit:
                    break
            wall = time.perf_counter() - started
            out[name] = _stats(times, wall)
    finally:
        app.close()
    return out


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _stats(times: Sequence[float], wall: float, errors: int = 0) -> dict[str, float]:
    return {
        "requests": len(times),
        "errors": errors,
        "p50_ms": statistics.median(times) if times else float("nan"),
        "p99_ms": _percentile(times, 0.99),
        "per_s": len(times) / wall if wall else 0.0,
    }


def load(port: int, urls: Sequence[str], clients: int, requests: int, limit: float) -> dict[str, float]:
    """``clients`` threads, each with one keep-alive connection, sharing ``requests`` requests;
    the cell ends when they are answered or ``limit`` seconds have passed."""
    lock = threading.Lock()
    issued = [0]
    times: list[float] = []
    errors = [0]
    deadline = time.perf_counter() + limit

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        while time.perf_counter() < deadline:
            with lock:
                k = issued[0]
                if k >= requests:
                    break
                issued[0] += 1
            t = time.perf_counter()
            try:
                conn.request("GET", urls[k % len(urls)])
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                ok = False
            if ok:
                mine.append((time.perf_counter() - t) * 1000)
            else:
                with lock:
                    errors[0] += 1
        conn.close()
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return _stats(times, time.perf_counter() - started, errors[0]) | {"clients": clients}


class RssSampler:
    """The resident memory of the server and its worker processes, every 0.25 s."""

    def __init__(self, pid: int) -> None:
        self.pid, self.samples = pid, []  # type: ignore[var-annotated]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree(self) -> list[int]:
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            with contextlib.suppress(OSError):
                todo += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        return found

    def rss_mb(self) -> float:
        total = 0
        for pid in self._tree():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total / 1024

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self.samples.append((time.perf_counter(), self.rss_mb()))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(db: str, workers: int) -> Any:
    port = _free_port()
    proc = subprocess.Popen(
        [LEDGER, "--db", db, "serve", "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"ledger serve stopped: {proc.communicate()[1]}")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/")
                if conn.getresponse().status == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("ledger serve did not answer within 120 s")
            time.sleep(0.2)
        yield proc, port
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _machine() -> dict[str, Any]:
    load_avg = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_avg_at_start": load_avg,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="ledger-serve-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db = args.db or str(workdir / "ledger.sqlite")
    results: dict[str, Any] = {
        "decisions": args.decisions,
        "database": "postgresql" if _pg(db) else "sqlite",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "workers": args.workers,
        "requests_per_cell": args.requests,
        "time_limit_s": args.time_limit,
    }
    try:
        if not args.reuse:
            if _pg(db):
                _reset_schema(db)
            results["build"] = build(db, args.decisions, args.seed, workdir)
        picked = subjects(db, args.subjects, args.seed)
        results["decisions"] = picked.pop("position")[0]
        urls = paths(picked)
        results["in_process"] = in_process(db, picked, args.requests, args.time_limit)
        served: list[dict[str, Any]] = []
        with server(db, args.workers) as (proc, port), RssSampler(proc.pid) as rss:
            for name in QUERIES:  # warm: every subject asked once, so that caches fill before the baseline
                load(port, urls[name], 8, len(urls[name]), args.time_limit * 3)
            results["rss_warm_samples"] = len(rss.samples)
            for name in QUERIES:
                for clients in args.clients:
                    served.append({"query": name} | load(port, urls[name], clients, args.requests, args.time_limit))
                    print(
                        f"… {name}, {clients} clients: {served[-1]['p99_ms']:.1f} ms p99", file=sys.stderr, flush=True
                    )
        results["served"] = served
        results["rss_mb"] = [round(mb, 1) for _, mb in rss.samples]
    finally:
        if not args.keep and not args.reuse:
            if _pg(db):
                with contextlib.suppress(Exception):
                    _reset_schema(db, drop_only=True)
            if not args.workdir:
                shutil.rmtree(workdir, ignore_errors=True)
    return results


def _reset_schema(url: str, *, drop_only: bool = False) -> None:
    import psycopg

    schema = dict(p.split("=", 1) for p in urlparse(url).query.split("&") if "=" in p).get("schema", "public")
    if schema == "public":
        raise SystemExit("--db postgresql://… needs ?schema=NAME: the benchmark drops and recreates that schema")
    base = url.split("?", 1)[0]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        if not drop_only:
            conn.execute(f'CREATE SCHEMA "{schema}"')


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    rss = results.get("rss_mb") or [0.0]
    settled = rss[min(len(rss) - 1, results.get("rss_warm_samples", 0)) :] or rss  # after the warm-up pass
    targets: dict[str, dict[str, Any]] = {}
    for cell in results["served"]:
        base = results["in_process"][cell["query"]]
        cell["vs_in_process"] = cell["per_s"] / base["per_s"] if base["per_s"] else None
        if cell["clients"] == 32 and cell["query"] != "proof":
            targets[f"p99 at 32 clients, {cell['query']}"] = {
                "value": cell["p99_ms"],
                "target": "< 50 ms",
                "pass": cell["p99_ms"] < 50 and not cell["errors"],
            }
    best = {q: max(c["vs_in_process"] or 0 for c in results["served"] if c["query"] == q) for q in QUERIES}
    for q, ratio in best.items():
        targets[f"served / in-process throughput, {q}"] = {"value": ratio, "target": "≥ 0.5", "pass": ratio >= 0.5}
    growth = settled[-1] / settled[0] if settled[0] else 1.0
    targets["server memory, last / first after warm-up"] = {
        "value": growth,
        "target": "≤ 1.10",
        "pass": growth <= 1.10,
    }
    return {"targets": targets, "rss_first_mb": settled[0], "rss_last_mb": settled[-1], "rss_max_mb": max(rss)}


def print_table(results: dict[str, Any], summary: dict[str, Any]) -> None:
    m = results["machine"]
    print(
        f"ledger serve, {results['database']}, {results['decisions']:,} decisions, {results['workers']} worker(s); "
        f"{m['cpus']} CPUs, load {m['load_avg_at_start']}; {results['requests_per_cell']} requests or "
        f"{results['time_limit_s']} s per cell"
    )
    rows = [("query", "clients", "answered", "errors", "p50 ms", "p99 ms", "req/s", "in-process req/s", "ratio")]
    for cell in results["served"]:
        base = results["in_process"][cell["query"]]
        rows.append(
            (
                cell["query"],
                str(cell["clients"]),
                str(cell["requests"]),
                str(cell["errors"]),
                f"{cell['p50_ms']:.1f}",
                f"{cell['p99_ms']:.1f}",
                f"{cell['per_s']:.0f}",
                f"{base['per_s']:.0f} (p50 {base['p50_ms']:.1f}, p99 {base['p99_ms']:.1f} ms)",
                f"{cell['vs_in_process']:.2f}" if cell["vs_in_process"] is not None else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    print(
        f"server RSS: {summary['rss_first_mb']:.0f} MB after warm-up, {summary['rss_last_mb']:.0f} MB at the end, "
        f"{summary['rss_max_mb']:.0f} MB at most ({len(results['rss_mb'])} samples)"
    )
    for name, t in summary["targets"].items():
        print(f"{'PASS' if t['pass'] else 'FAIL'}  {name}: {t['value']:.2f} (target {t['target']})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", "-n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", help="a SQLite file, or postgresql://…?schema=NAME (dropped and recreated)")
    parser.add_argument(
        "--reuse", action="store_true", help="serve the ledger at --db as it is (built and checkpointed)"
    )
    parser.add_argument("--workdir", help="where the decision file and the SQLite ledger go (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder / PostgreSQL schema")
    parser.add_argument("--workers", type=int, default=2, help="server processes (default 2)")
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=2000, help="requests per cell (default 2000)")
    parser.add_argument("--time-limit", type=float, default=20.0, help="seconds per cell at most (default 20)")
    parser.add_argument("--subjects", type=int, default=500, help="distinct subjects drawn per query (default 500)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    if args.reuse and not args.db:
        parser.error("--reuse needs --db")
    results = run(args)
    summary = summarise(results)
    if args.json:
        print(json.dumps(summary | {"details": results}, ensure_ascii=False, indent=1))
    else:
        print_table(results, summary)
    return 0 if all(t["pass"] for t in summary["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
