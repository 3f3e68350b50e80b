"""Medians, ratios to the SDK's generator, the issue's targets, tables, the chart, the README."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

IMPL_ORDER = ("floor", "generator", "pull", "push", "push_rx")
IMPL_LABEL = {
    "floor": "floor",
    "generator": "SDK generator",
    "pull": "pull bridge",
    "push": "push (AnyioScheduler)",
    "push_rx": "push (AsyncIOScheduler)",
}
BACKEND_ORDER = ("asyncio", "uvloop", "trio")
PER_POLL_VARIANTS = ("0ms/return", "0ms/sleep0", "1ms/return", "1ms/sleep0")
README_START = "<!-- bench:results:start -->"
README_END = "<!-- bench:results:end -->"


def count_label(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


# -- summary ---------------------------------------------------------------------------------


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (scenario, loop, variant, subject, metric): median, spread, ratio.

    ``ratio`` and ``diff`` compare with the generator in the same repeat (each rxtasks run
    is paired with the generator run next to it), and are the medians of those per-repeat
    ratios and differences: steadier under the machine's changing load than the ratio of
    two medians, from which they can differ slightly.
    """
    groups: dict[tuple[str, str, str, str], dict[str, dict[int, float]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for record in records:
        key = (record["scenario"], record["backend"], record["variant"], record["impl"])
        for metric, value in record["metrics"].items():
            if isinstance(value, int | float) and not math.isnan(value):
                groups[key][metric][record["repeat"]] = float(value)
    rows = []
    for (scenario, backend, variant, impl), metrics in groups.items():
        for metric, by_repeat in metrics.items():
            values = list(by_repeat.values())
            row: dict[str, Any] = {
                "scenario": scenario,
                "backend": backend,
                "variant": variant,
                "impl": impl,
                "metric": metric,
                "median": statistics.median(values),
                "q1": quantile(values, 0.25),
                "q3": quantile(values, 0.75),
                "min": min(values),
                "max": max(values),
                "n": len(values),
            }
            generator = groups.get((scenario, backend, variant, "generator"), {}).get(metric)
            if generator and impl != "generator":
                fallback = statistics.median(generator.values())
                pairs = [(v, generator.get(r, fallback)) for r, v in by_repeat.items()]
                row["diff"] = statistics.median(v - g for v, g in pairs)
                ratios = [v / g for v, g in pairs if g > 0]
                if ratios:
                    row["ratio"] = statistics.median(ratios)
                    row["ratio_min"] = min(ratios)
                    row["ratio_max"] = max(ratios)
            rows.append(row)
    return rows


def find(
    summary: list[dict[str, Any]], scenario: str, backend: str, variant: str, impl: str, metric: str
) -> dict[str, Any] | None:
    for row in summary:
        if (
            row["scenario"] == scenario
            and row["backend"] == backend
            and row["variant"] == variant
            and row["impl"] == impl
            and row["metric"] == metric
        ):
            return row
    return None


def present(summary: list[dict[str, Any]], scenario: str, key: str) -> list[str]:
    """The values of ``key`` seen in a scenario, in a stable, readable order."""
    seen = {row[key] for row in summary if row["scenario"] == scenario}
    order = {"backend": BACKEND_ORDER, "impl": IMPL_ORDER}.get(key)
    if order:
        return [v for v in order if v in seen]
    return sorted(seen, key=_variant_key)


def _variant_key(variant: str) -> tuple[Any, ...]:
    # "10k/sleep0" -> (10000, "sleep0"); "50ms" -> (50, ""); "0ms/return" -> (0, "return")
    head, _, tail = variant.partition("/")
    digits = "".join(c for c in head if c.isdigit())
    scale = 1000 if head.endswith("k") else 1
    return (int(digits) * scale if digits else 0, tail != "return", tail)


# -- targets (issues 5 and 11) ---------------------------------------------------------------


def evaluate_targets(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, each with the figure measured and whether it is met."""
    out: list[dict[str, Any]] = []

    def add(
        target: str,
        where: str,
        measured: float,
        limit: float,
        unit: str,
        ok: bool | None,
        op: str = "<=",
    ) -> None:
        out.append(
            {
                "target": target,
                "where": where,
                "measured": measured,
                "limit": f"{op} {num(limit)}{unit}",
                "met": ok,
                "unit": unit,
            }
        )

    for variant in ("0ms/return", "0ms/sleep0"):
        for impl, limit in (("pull", 1.0), ("push", 1.3)):
            row = find(summary, "per_poll", "asyncio", variant, impl, "cpu_us")
            if row and "ratio" in row:
                add(
                    f"per-poll CPU, {IMPL_LABEL[impl]}",
                    f"asyncio, interval 0, get_task {variant.split('/')[1]}",
                    row["ratio"],
                    limit,
                    "x",
                    row["ratio"] <= limit,
                )
    for interval in ("10ms", "50ms"):
        for impl in ("pull", "push"):
            row = find(summary, "timer", "asyncio", interval, impl, "late_p99_ms")
            if row and "diff" in row:
                add(
                    f"lateness p99 - generator's, {IMPL_LABEL[impl]}",
                    f"asyncio, {interval}",
                    row["diff"],
                    0.5,
                    "ms",
                    row["diff"] <= 0.5,
                )
            row = find(summary, "timer", "asyncio", interval, impl, "drift_ms")
            gen = find(summary, "timer", "asyncio", interval, "generator", "drift_ms")
            if row and gen and "diff" in row:
                # "No drift beyond the generator's": within the generator's own run-to-run
                # range of its median. One run (--quick) has no range: not judged.
                slack = gen["max"] - gen["min"]
                add(
                    f"drift over {count_polls(summary)} polls - generator's, {IMPL_LABEL[impl]}",
                    f"asyncio, {interval}",
                    row["diff"],
                    slack,
                    "ms",
                    row["diff"] <= slack if gen["n"] > 1 else None,
                )
    for variant in present(summary, "scale", "variant"):
        if not variant.startswith(("10k/", "100k/")):
            continue
        for backend in ("asyncio", "trio"):
            for metric, what in (("cpu_us_per_poll", "CPU per poll"), ("kb_per_poll", "KB/poll")):
                row = find(summary, "scale", backend, variant, "push", metric)
                if row and "ratio" in row:
                    add(
                        f"scale {what}, push (AnyioScheduler)",
                        f"{backend}, N={variant.replace('/', ', get_task ')}",
                        row["ratio"],
                        1.0,
                        "x",
                        row["ratio"] <= 1.0,
                    )
    for metric, what, limit in (
        ("cpu_us_per_poll", "CPU per poll", 1.5),
        ("kb_per_poll", "KB/poll", 1.2),
    ):
        for variant in present(summary, "scale", "variant"):
            row = find(summary, "scale", "asyncio", variant, "pull", metric)
            if variant.startswith("10k/") and row and "ratio" in row:
                add(
                    f"scale {what}, {IMPL_LABEL['pull']}",
                    f"asyncio, N={variant.replace('/', ', get_task ')}",
                    row["ratio"],
                    limit,
                    "x",
                    row["ratio"] <= limit,
                )
    row = find(summary, "import", "-", "import rxtasks", "rxtasks", "importtime_ms")
    if row:
        add(
            "import rxtasks",
            "-X importtime, cumulative",
            row["median"],
            150,
            "ms",
            row["median"] < 150,
            op="<",
        )
    row = find(summary, "import", "-", "import rxtasks", "rxtasks", "mcp_imported")
    if row:
        add(
            "mcp not imported by the core",
            "'mcp' in sys.modules",
            row["max"],
            0,
            "",
            row["max"] == 0,
        )
    return out


def count_polls(summary: list[dict[str, Any]]) -> str:
    polls = {
        row["median"] for row in summary if row["scenario"] == "timer" and row["metric"] == "polls"
    }
    return "/".join(f"{p:.0f}" for p in sorted(polls)) or "?"


# -- tables ----------------------------------------------------------------------------------


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""

    def text(self) -> str:
        widths = [
            max(len(self.headers[i]), *(len(r[i]) for r in self.rows))
            for i in range(len(self.headers))
        ]
        lines = [self.title, "-" * len(self.title)]
        if self.note:
            lines.append(self.note)
        lines.append("  ".join(h.ljust(w) for h, w in zip(self.headers, widths, strict=True)))
        lines.extend(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in self.rows
        )
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [f"#### {self.title}", ""]
        if self.note:
            lines += [self.note, ""]
        lines.append("| " + " | ".join(self.headers) + " |")
        lines.append("|" + "|".join("---" for _ in self.headers) + "|")
        lines.extend("| " + " | ".join(row) + " |" for row in self.rows)
        return "\n".join(lines)


def num(x: float | None) -> str:
    """Three significant figures, without an exponent for the sizes seen here."""
    if x is None or math.isnan(x):
        return "-"
    ax = abs(x)
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def spread(row: dict[str, Any]) -> str:
    """Half the interquartile range, relative to the median."""
    if row["n"] < 2 or not row["median"]:
        return ""
    return f" ±{abs(row['q3'] - row['q1']) / 2 / abs(row['median']) * 100:.0f}%"


def cell(row: dict[str, Any] | None, *, show_spread: bool = True, ratio: bool = True) -> str:
    if row is None:
        return ""
    text = num(row["median"]) + (spread(row) if show_spread else "")
    if ratio and "ratio" in row:
        text += f" ({row['ratio']:.2f}x)"
    return text


def count(row: dict[str, Any] | None) -> str:
    return "" if row is None else f"{row['median']:.0f}"


def percent(row: dict[str, Any] | None) -> str:
    return "" if row is None else f"{row['median'] * 100:.0f}%"


def signed(x: float | None) -> str:
    return "" if x is None else ("+" if x >= 0 else "") + num(x)


def tables(
    summary: list[dict[str, Any]], targets: list[dict[str, Any]], *, quick: bool = False
) -> list[Table]:
    out = []
    if targets:
        out.append(
            Table(
                "Targets (issues 5 and 11; ratios to the SDK generator in the same run)",
                ["target", "where", "measured", "limit", "met"],
                [
                    [
                        t["target"],
                        t["where"],
                        f"{num(t['measured'])}{t['unit']}",
                        t["limit"],
                        {True: "met", False: "NOT MET", None: "one run: not judged"}[t["met"]],
                    ]
                    for t in targets
                ],
                note=(
                    "--quick measures each cell once and briefly: its ratios move by about"
                    " 0.1 from run to run. The targets are judged on a full run."
                    if quick
                    else ""
                ),
            )
        )
    row = find(summary, "import", "-", "import rxtasks", "rxtasks", "importtime_ms")
    if row:
        wall = find(summary, "import", "-", "import rxtasks", "rxtasks", "wall_over_bare_ms")
        out.append(
            Table(
                "Import time of `import rxtasks` (fresh interpreters)",
                ["-X importtime cumulative (ms)", "wall, minus a bare interpreter (ms)"],
                [[cell(row), cell(wall)]],
                note=f"median of {row['n']}.",
            )
        )
    impls_calls = present(summary, "calls", "impl")
    if impls_calls:
        out.append(
            Table(
                "Function calls per poll (cProfile; interval 0, get_task returns at once)",
                ["loop", *(IMPL_LABEL[i] for i in impls_calls)],
                [
                    [
                        backend,
                        *(
                            cell(
                                find(summary, "calls", backend, "0ms/return", i, "calls_per_poll"),
                                show_spread=False,
                            )
                            for i in impls_calls
                        ),
                    ]
                    for backend in present(summary, "calls", "backend")
                ],
                note="Python and C calls, counted, not timed: free of the machine's noise.",
            )
        )
    impls_pp = present(summary, "per_poll", "impl")
    for metric, title in (
        ("cpu_us", "Per-poll CPU time (µs)"),
        ("wall_us", "Per-poll wall time (µs)"),
    ):
        if not impls_pp:
            break
        rows = []
        for backend in present(summary, "per_poll", "backend"):
            for variant in PER_POLL_VARIANTS:
                cells = [
                    cell(find(summary, "per_poll", backend, variant, i, metric)) for i in impls_pp
                ]
                if any(cells):
                    interval, get_task = variant.split("/")
                    rows.append([backend, interval, get_task, *cells])
        out.append(
            Table(
                title,
                ["loop", "interval", "get_task", *(IMPL_LABEL[i] for i in impls_pp)],
                rows,
                note="median ±half the IQR over repeats (ratio to the SDK generator).",
            )
        )
    impls_t = present(summary, "timer", "impl")
    if impls_t:
        rows = []
        for backend in present(summary, "timer", "backend"):
            for variant in present(summary, "timer", "variant"):
                for impl in impls_t:
                    t = partial(find, summary, "timer", backend, variant, impl)
                    p99, drift = t("late_p99_ms"), t("drift_ms")
                    if p99 is None:
                        continue
                    rows.append(
                        [
                            backend,
                            variant,
                            IMPL_LABEL[impl],
                            num((t("late_mean_ms") or {}).get("median")),
                            num((t("late_p50_ms") or {}).get("median")),
                            num(p99["median"]) + spread(p99),
                            signed(p99.get("diff")),
                            num(drift["median"]) if drift else "",
                            signed(drift.get("diff")) if drift else "",
                        ]
                    )
        out.append(
            Table(
                "Timer accuracy: lateness of each poll after its due time (ms)",
                [
                    "loop",
                    "interval",
                    "subject",
                    "mean",
                    "p50",
                    "p99",
                    "p99 - gen",
                    "drift",
                    "drift - gen",
                ],
                rows,
                note=f"due = the previous response + the interval; drift = the last of"
                f" {count_polls(summary)} calls' start - the first's - the intervals between.",
            )
        )
    impls_s = present(summary, "scale", "impl")
    if impls_s:
        rows = []
        for backend in present(summary, "scale", "backend"):
            for variant in present(summary, "scale", "variant"):
                for impl in impls_s:
                    s = partial(find, summary, "scale", backend, variant, impl)
                    cpu = s("cpu_us_per_poll")
                    if cpu is None:
                        continue
                    n, get_task = variant.split("/")
                    rows.append(
                        [
                            backend,
                            n,
                            get_task,
                            IMPL_LABEL[impl],
                            cell(s("kb_per_poll"), show_spread=False),
                            cell(cpu),
                            cell(s("wall_over_ideal"), ratio=False),
                            cell(s("lag_p50_ms"), ratio=False, show_spread=False),
                            cell(s("lag_p99_ms"), ratio=False, show_spread=False),
                            cell(s("rss_growth_mb"), ratio=False, show_spread=False),
                            percent(s("gc_share")),
                            count(s("full_gcs")),
                            str(cpu["n"]),
                        ]
                    )
        out.append(
            Table(
                "Scale: N tasks polled concurrently every 100 ms",
                [
                    "loop",
                    "N",
                    "get_task",
                    "subject",
                    "KB/poll",
                    "CPU µs/poll",
                    "wall/ideal",
                    "lag p50 ms",
                    "lag p99 ms",
                    "RSS growth MB",
                    "GC share",
                    "full GCs",
                    "runs",
                ],
                rows,
                note="KB/poll = peak RSS growth / N; (ratio to the SDK generator); GC share ="
                " the part of the CPU time spent in the cyclic garbage collector.",
            )
        )
    return out


def render_text(meta: dict[str, Any], tables: list[Table]) -> str:
    return "\n\n".join([machine_line(meta), *(t.text() for t in tables)])


def machine_line(meta: dict[str, Any]) -> str:
    v = meta["versions"]
    load = f"{meta['loadavg_start'][0]:.2f} -> {meta.get('loadavg_end', [math.nan])[0]:.2f}"
    return (
        f"{meta['date']}, {meta['mode']} run of {meta.get('suite_seconds', '?')} s"
        f" on {meta['cpu']},"
        f" {meta['cores']} cores, {meta['implementation']} {meta['python']}, {meta['os']};"
        f" rxtasks {v['rxtasks']} ({meta['commit']}), mcp {v['mcp']}, anyio {v['anyio']},"
        f" reactivex {v['reactivex']}, trio {v['trio']}, uvloop {v['uvloop']};"
        f" load average {load} (other work shares the machine);"
        f" imports' RSS {meta['baseline_rss_mb']:.0f} MB."
    )


def update_readme(path: Path, meta: dict[str, Any], tables: list[Table]) -> None:
    text = path.read_text()
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    body = "\n\n".join(
        [
            f"_{machine_line(meta)}_",
            "![The latest full run](results/latest.png)",
            *(t.markdown() for t in tables),
        ]
    )
    path.write_text(text[:start] + "\n" + body + "\n" + text[end:])


# -- chart ----------------------------------------------------------------------------------


COLORS = {
    "floor": "#9e9e9e",
    "generator": "#1f77b4",
    "pull": "#2ca02c",
    "push": "#d62728",
    "push_rx": "#ff7f0e",
}


def chart(summary: list[dict[str, Any]], meta: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(14, 11), height_ratios=(1, 1.25))
    _bars(
        axes[0][0],
        summary,
        "per_poll",
        "cpu_us",
        [(b, v) for b in BACKEND_ORDER for v in ("0ms/return", "0ms/sleep0")],
        "CPU µs per poll, interval 0 (log)",
        log=True,
    )
    _bars(
        axes[0][1],
        summary,
        "timer",
        "late_p99_ms",
        [(b, v) for b in BACKEND_ORDER for v in present(summary, "timer", "variant")],
        "timer lateness p99, ms",
    )
    _lines(axes[1][0], summary, "cpu_us_per_poll", "scale: CPU µs per poll (get_task returns)")
    _lines(axes[1][1], summary, "kb_per_poll", "scale: KB of RSS per concurrent poll")
    fig.suptitle(
        f"rxtasks vs the MCP SDK's generator: {meta['date']}, {meta['cpu']}, {meta['cores']} cores,"
        f" Python {meta['python']} ({meta['mode']} run)",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _bars(
    ax: Any,
    summary: list[dict[str, Any]],
    scenario: str,
    metric: str,
    groups: list[tuple[str, str]],
    title: str,
    *,
    log: bool = False,
) -> None:
    impls = present(summary, scenario, "impl")
    groups = [
        g for g in groups if any(find(summary, scenario, g[0], g[1], i, metric) for i in impls)
    ]
    if not groups:
        ax.set_visible(False)
        return
    width = 0.8 / max(len(impls), 1)
    for k, impl in enumerate(impls):
        xs, ys, lo, hi = [], [], [], []
        for g, (backend, variant) in enumerate(groups):
            row = find(summary, scenario, backend, variant, impl, metric)
            if row is None:
                continue
            xs.append(g + (k - (len(impls) - 1) / 2) * width)
            ys.append(row["median"])
            lo.append(max(row["median"] - row["q1"], 0))
            hi.append(max(row["q3"] - row["median"], 0))
        ax.bar(xs, ys, width, yerr=[lo, hi], label=IMPL_LABEL[impl], color=COLORS[impl], capsize=2)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{b}\n{v}" for b, v in groups], fontsize=8)
    high = ax.get_ylim()[1]
    if log:
        ax.set_yscale("log")
        ax.set_ylim(top=high * 6)  # room for the legend above the bars
    else:
        ax.set_ylim(top=high * 1.35)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=3, loc="upper center")
    ax.grid(axis="y", alpha=0.3)


def _lines(ax: Any, summary: list[dict[str, Any]], metric: str, title: str) -> None:
    variants = [v for v in present(summary, "scale", "variant") if v.endswith("/return")]
    if not variants:
        ax.set_visible(False)
        return
    sizes = {v: _variant_key(v)[0] for v in variants}
    for backend, style in (("asyncio", "-"), ("uvloop", ":"), ("trio", "--")):
        for impl in present(summary, "scale", "impl"):
            points = [
                (sizes[v], row["median"])
                for v in variants
                if (row := find(summary, "scale", backend, v, impl, metric))
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(
                    xs,
                    ys,
                    style,
                    marker="o",
                    color=COLORS[impl],
                    label=f"{IMPL_LABEL[impl]}, {backend}",
                )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("concurrent tasks N (solid: asyncio, dotted: uvloop, dashed: trio)")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    ax.grid(alpha=0.3)
