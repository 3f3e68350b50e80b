"""The benchmark suite: rxtasks against the MCP SDK's generator on asyncio, uvloop and trio.

    nox -s bench                          # the whole suite (about 10 minutes)
    nox -s bench -- --quick               # a spot check (under a minute)
    python benchmarks/run.py --only scale --backends trio --quick

Every measurement runs in a process of its own, forked from this one after the imports
(so each has the same modules loaded, a fresh heap and its own peak RSS), and prints
nothing: this runner collects the figures, takes medians over the repeats, prints the
tables with every rxtasks figure beside the generator's as a ratio, and writes
``<out>/latest.json`` and ``<out>/latest.png`` (``quick.*`` or ``partial.*`` for a
``--quick`` or ``--only`` run). A full run also rewrites the results section of
``benchmarks/README.md``, which explains how to read each figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import report
import scenarios

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"


@dataclass(frozen=True)
class ScaleSet:
    """The scale cells for one number of concurrent tasks."""

    n: int
    polls: int
    backends: tuple[str, ...]
    impls: tuple[str, ...]
    # The subjects also measured with a get_task that awaits anyio.sleep(0).
    awaiting_impls: tuple[str, ...] = ()
    repeats: int = 1
    # Other repeat counts, by "loop/subject", subject or loop (0: not measured).
    repeats_for: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    per_poll_repeats: int
    per_poll_polls0: int  # polls of one task at interval 0
    per_poll_polls_timed: int  # polls of one task at interval 1 ms
    warmup_polls: int
    calls_polls: int
    timer_intervals_ms: tuple[int, ...]
    timer_polls: int
    timer_impls: tuple[str, ...]
    timer_repeats: dict[str, int]  # by "loop/subject" or loop (0 or absent: not measured)
    scale_interval_ms: int
    scale: tuple[ScaleSet, ...]
    import_runs: int


ALL_IMPLS = ("floor", "generator", "pull", "push", "push_rx")

# The budget: about ten minutes on 2 cores. Repeats go where the targets are
# (asyncio; trio at scale); the other cells are measured fewer times. Sleeping cells (the
# timer) cannot share the machine without losing accuracy, so they run one at a time.
FULL = Config(
    per_poll_repeats=5,
    per_poll_polls0=5000,
    per_poll_polls_timed=200,
    warmup_polls=500,
    calls_polls=2000,
    timer_intervals_ms=(10, 50),
    timer_polls=200,
    # The floor sleeps like the generator does; the timer tells nothing new about it.
    timer_impls=("generator", "pull", "push", "push_rx"),
    # reactivex's AsyncIOScheduler on uvloop is the same code as on asyncio: timed once.
    timer_repeats={"asyncio": 3, "uvloop": 1, "trio": 1, "uvloop/push_rx": 0},
    scale_interval_ms=100,
    scale=(
        ScaleSet(1_000, 20, ("asyncio", "uvloop", "trio"), ALL_IMPLS),
        ScaleSet(
            10_000,
            20,
            ("asyncio", "uvloop", "trio"),
            ALL_IMPLS,
            awaiting_impls=("generator", "push"),
            repeats=2,
            # reactivex's AsyncIOScheduler needs ~25 s here (12x real time): once is enough.
            repeats_for={"uvloop": 1, "push_rx": 1, "uvloop/push_rx": 0},
        ),
        # 100,000 tasks saturate the CPU: every subject runs 50-100x slower than real time,
        # 20-45 s a run even with 5 polls each instead of 20.
        ScaleSet(100_000, 5, ("asyncio", "trio"), ("generator", "push")),
    ),
    import_runs=10,
)

QUICK = Config(
    per_poll_repeats=2,
    per_poll_polls0=2000,
    per_poll_polls_timed=50,
    warmup_polls=200,
    calls_polls=500,
    timer_intervals_ms=(10,),
    timer_polls=50,
    timer_impls=("generator", "pull", "push"),
    timer_repeats={"asyncio": 1},
    scale_interval_ms=100,
    scale=(
        ScaleSet(1_000, 20, ("asyncio", "trio"), ("generator", "push")),
        # 10 polls: the generator on trio needs 15 s for 20 at this size.
        ScaleSet(10_000, 10, ("asyncio", "trio"), ("generator", "push")),
    ),
    import_runs=5,
)

SECTIONS = ("import", "calls", "per_poll", "timer", "scale")


@dataclass
class Cell:
    """One thing to measure: a subject on a loop in a scenario, repeated."""

    scenario: str
    backend: str
    impl: str
    variant: str
    spec: dict[str, Any]
    repeats: int


def repeats_of(table: dict[str, int], backend: str, impl: str, default: int) -> int:
    for key in (f"{backend}/{impl}", impl, backend):
        if key in table:
            return table[key]
    return default


def impls_for(backend: str, wanted: tuple[str, ...], selected: set[str]) -> list[str]:
    out = []
    for impl in wanted:
        if impl not in selected:
            continue
        if impl == "push_rx" and backend == "trio":
            continue  # reactivex's AsyncIOScheduler needs an asyncio loop
        if impl == "generator" and not scenarios.HAVE_MCP:
            continue
        out.append(impl)
    return out


def plan(cfg: Config, only: set[str], backends: set[str], impls: set[str]) -> list[Cell]:
    cells: list[Cell] = []
    loops = [b for b in scenarios.BACKENDS if b in backends]

    def base(scenario: str, backend: str, impl: str) -> dict[str, Any]:
        return {"scenario": scenario, "backend": backend, "impl": impl}

    if "calls" in only:
        for backend in loops:
            for impl in impls_for(backend, ALL_IMPLS, impls):
                spec = base("calls", backend, impl) | {"polls": cfg.calls_polls}
                cells.append(Cell("calls", backend, impl, "0ms/return", spec, 1))
    if "per_poll" in only:
        for backend in loops:
            for impl in impls_for(backend, ALL_IMPLS, impls):
                spec = base("per_poll", backend, impl) | {
                    "intervals_ms": [0, 1],
                    "polls_interval0": cfg.per_poll_polls0,
                    "polls_timed": cfg.per_poll_polls_timed,
                    "warmup_polls": cfg.warmup_polls,
                }
                cells.append(Cell("per_poll", backend, impl, "", spec, cfg.per_poll_repeats))
    if "timer" in only:
        for interval in cfg.timer_intervals_ms:
            for backend in loops:
                for impl in impls_for(backend, cfg.timer_impls, impls):
                    repeats = repeats_of(cfg.timer_repeats, backend, impl, 0)
                    if not repeats:
                        continue
                    spec = base("timer", backend, impl) | {
                        "interval_ms": interval,
                        "polls": cfg.timer_polls,
                    }
                    cells.append(Cell("timer", backend, impl, f"{interval}ms", spec, repeats))
    if "scale" in only:
        for group in cfg.scale:
            for backend in loops:
                if backend not in group.backends:
                    continue
                for impl in impls_for(backend, group.impls, impls):
                    for awaits in (False, True):
                        if awaits and impl not in group.awaiting_impls:
                            continue
                        spec = base("scale", backend, impl) | {
                            "n": group.n,
                            "polls": group.polls,
                            "interval_ms": cfg.scale_interval_ms,
                            "awaits": awaits,
                        }
                        variant = f"{report.count_label(group.n)}/" + (
                            "sleep0" if awaits else "return"
                        )
                        repeats = repeats_of(group.repeats_for, backend, impl, group.repeats)
                        if not repeats:
                            continue
                        cells.append(Cell("scale", backend, impl, variant, spec, repeats))
    return cells


# -- running measurements in forked children -----------------------------------------------


def fork_measure(spec: dict[str, Any], timeout_s: int) -> tuple[int, int]:
    """Start one measurement in a forked child; return its pid and the pipe to read."""
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: measure, write the figures to the pipe, exit at once
        os.close(read_fd)
        signal.alarm(timeout_s)  # a hung measurement ends itself
        code = 0
        try:
            payload = {"ok": True, "result": scenarios.measure(spec)}
        except BaseException:  # noqa: BLE001 -- reported to the runner, which prints it
            payload = {"ok": False, "error": traceback.format_exc()}
            code = 1
        with os.fdopen(write_fd, "w") as pipe:
            json.dump(payload, pipe)
        os._exit(code)
    os.close(write_fd)
    return pid, read_fd


def collect(pid: int, read_fd: int) -> dict[str, Any]:
    with os.fdopen(read_fd) as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        return {"ok": False, "error": f"the child died (wait status {status})"}
    return json.loads(data)


def run_cells(cells: list[Cell], out: Path, profile: bool) -> list[dict[str, Any]]:
    """Run every cell's repeats, interleaved, and return one record per figure set."""
    records: list[dict[str, Any]] = []
    total = sum(cell.repeats for cell in cells)
    done = 0
    if profile:
        (out / "profiles").mkdir(parents=True, exist_ok=True)
    # Interleave the repeats: a burst of load from elsewhere on the machine then lands on
    # every subject alike instead of on one of them.
    for repeat in range(max((cell.repeats for cell in cells), default=0)):
        for cell in [cell for cell in cells if cell.repeats > repeat]:
            # One at a time, even the timer cells that mostly sleep: 14 of them side by
            # side made the generator's p99 lateness 4x worse (0.36 -> 1.6 ms).
            started = time.perf_counter()
            spec = with_profile(cell, repeat, out) if profile else cell.spec
            outcome = collect(*fork_measure(spec, timeout_s=600))
            done += 1
            progress(done, total, cell, repeat, time.perf_counter() - started, outcome)
            records.extend(to_records(cell, repeat, outcome))
    return records


def with_profile(cell: Cell, repeat: int, out: Path) -> dict[str, Any]:
    name = f"{cell.scenario}-{cell.backend}-{cell.impl}-{cell.variant or 'all'}-{repeat}"
    return cell.spec | {"profile": str(out / "profiles" / (name.replace("/", "_") + ".txt"))}


def progress(
    done: int, total: int, cell: Cell, repeat: int, seconds: float, outcome: dict[str, Any]
) -> None:
    status = "" if outcome["ok"] else "  FAILED"
    label = f"{cell.scenario} {cell.backend} {cell.impl} {cell.variant}".strip()
    print(f"[{done:3}/{total}] {label:<40} #{repeat + 1}  {seconds:5.1f} s{status}", flush=True)
    if not outcome["ok"]:
        print(outcome["error"], file=sys.stderr)


def to_records(cell: Cell, repeat: int, outcome: dict[str, Any]) -> list[dict[str, Any]]:
    if not outcome["ok"]:
        return []
    result = outcome["result"]
    common = {"scenario": cell.scenario, "backend": cell.backend, "impl": cell.impl}
    if cell.scenario == "per_poll":  # one child measures every variant of its subject
        return [
            common | {"variant": variant, "repeat": repeat, "metrics": metrics}
            for variant, metrics in result.items()
        ]
    return [common | {"variant": cell.variant, "repeat": repeat, "metrics": result}]


# -- import time ------------------------------------------------------------------------------


def measure_import(runs: int) -> list[dict[str, Any]]:
    """``import rxtasks`` in fresh interpreters: -X importtime's figure and the wall clock."""
    records = []
    code = "import sys, rxtasks; print(int('mcp' in sys.modules))"
    for repeat in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare = time.perf_counter() - t0
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            check=True,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
        cumulative_us = 0
        for line in proc.stderr.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) == 3 and parts[2] == "rxtasks":
                cumulative_us = int(parts[1])
        metrics = {
            "importtime_ms": cumulative_us / 1000,
            "wall_over_bare_ms": (wall - bare) * 1000,
            "mcp_imported": int(proc.stdout.strip()),
        }
        records.append(
            {
                "scenario": "import",
                "backend": "-",
                "impl": "rxtasks",
                "variant": "import rxtasks",
                "repeat": repeat,
                "metrics": metrics,
            }
        )
    print(f"[import] {runs} fresh interpreters", flush=True)
    return records


# -- the machine ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for dist in ("rxtasks", "mcp", "anyio", "reactivex", "trio", "uvloop"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    try:
        commit = subprocess.run(
            ["git", "-C", str(HERE), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": platform.platform(),
        "versions": versions,
        "commit": commit,
        "loadavg_start": os.getloadavg(),
        "baseline_rss_mb": scenarios.current_rss_kb() / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a spot check in under a minute")
    parser.add_argument(
        "--out", type=Path, default=HERE / "results", help="where to write JSON and PNG"
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run, of: {', '.join(SECTIONS)}",
    )
    parser.add_argument("--backends", default=",".join(scenarios.BACKENDS))
    parser.add_argument("--impls", default=",".join(ALL_IMPLS))
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample every measurement with pyinstrument; call trees in <out>/profiles/",
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    if unknown := only - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    backends = set(args.backends.split(","))
    impls = set(args.impls.split(","))
    if not scenarios.HAVE_MCP:
        print("mcp 1.x is not installed: no generator to compare with (run `nox -s bench`)")
    try:
        import uvloop  # noqa: F401
    except ImportError:
        backends.discard("uvloop")

    cfg = QUICK if args.quick else FULL
    complete = (
        only == set(SECTIONS) and backends >= set(scenarios.BACKENDS) and impls >= set(ALL_IMPLS)
    )
    name = "quick" if args.quick else ("latest" if complete else "partial")
    started = time.perf_counter()
    meta = machine()
    meta["mode"] = "quick" if args.quick else "full"
    records: list[dict[str, Any]] = []
    if "import" in only:
        records += measure_import(cfg.import_runs)
    records += run_cells(plan(cfg, only, backends, impls), args.out, args.profile)
    meta["loadavg_end"] = os.getloadavg()
    meta["suite_seconds"] = round(time.perf_counter() - started, 1)

    summary = report.summarize(records)
    targets = report.evaluate_targets(summary)
    tables = report.tables(summary, targets, quick=args.quick)
    print()
    print(report.render_text(meta, tables))
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "meta": meta,
        "config": {"quick": args.quick, "only": sorted(only), "cells": repr(cfg)},
        "summary": summary,
        "targets": targets,
        "runs": records,
    }
    json_path = args.out / f"{name}.json"
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    png_path = args.out / f"{name}.png"
    report.chart(summary, meta, png_path)
    print(f"\nwrote {json_path} and {png_path} in {meta['suite_seconds']} s")
    if name == "latest" and args.out.resolve() == (HERE / "results").resolve():
        report.update_readme(README, meta, tables)
        print(f"updated the results in {README}")


if __name__ == "__main__":
    main()
