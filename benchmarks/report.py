"""Tables, JSON and charts of benchmark results."""
import json
import math
import os
import platform
from typing import Dict, List

import torch

from benchmarks.harness import Result


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    import qtorch

    return (f"{cpu}, {os.cpu_count()} cores; torch {torch.__version__}; qtorch ISA {qtorch.kernel_isa()} "
            f"(supported: {', '.join(qtorch.supported_isas())})")


def _rate(r: Result) -> str:
    t = r.timings["qtorch"].median_us * 1e-6
    if r.ops:
        return f"{r.ops / t / 1e9:.0f} GOPS"
    if r.bytes:
        return f"{r.bytes / t / 1e9:.1f} GB/s"
    return ""


def peers(r: Result) -> List[str]:
    """Contenders from other libraries (e.g. fbgemm_gpu): neither qtorch, native torch nor float32."""
    return [n for n in r.timings if n != "qtorch" and n != "float32" and not n.startswith("native")]


def markdown(results: List[Result]) -> str:
    lines = ["| group | case | threads | qtorch us | best native us (engine) | native/qtorch | per engine | "
             "float32/qtorch | other peers/qtorch | qtorch rate |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        best = r.best_native
        per_engine = ", ".join(f"{n.partition('-')[2] or 'default'} {r.ratio(n):.2f}" for n in r.timings if n.startswith("native"))
        fp = f"{r.ratio('float32'):.2f}" if "float32" in r.timings else ""
        best_cell = f"{r.timings[best].median_us:.1f} ({best.partition('-')[2] or 'default'})" if best else ""
        ratio = f"**{r.ratio(best):.2f}**" if best else ""
        others = ", ".join(f"{n} {r.ratio(n):.2f}" for n in peers(r))
        lines.append(f"| {r.group} | {r.name} | {r.threads} | {r.timings['qtorch'].median_us:.1f} | {best_cell} | "
                     f"{ratio} | {per_engine} | {fp} | {others} | {_rate(r)} |")
    lines.append("")
    for group, ratios in group_means(results).items():
        lines.append(f"- {group}: geometric mean native/qtorch {ratios:.2f}")
    for peer, ratios in peer_means(results).items():
        lines.append(f"- {peer}: geometric mean {peer}/qtorch {ratios:.2f} over the cases it runs")
    return "\n".join(lines)


def _geomean(values: List[float]) -> float:
    return math.exp(sum(math.log(x) for x in values) / len(values))


def peer_means(results: List[Result]) -> Dict[str, float]:
    """Per other peer, the geometric mean of peer/qtorch over the cases where it ran."""
    ratios: Dict[str, List[float]] = {}
    for r in results:
        for n in peers(r):
            ratios.setdefault(n, []).append(r.ratio(n))
    return {n: _geomean(v) for n, v in ratios.items()}


def group_means(results: List[Result]) -> Dict[str, float]:
    groups: Dict[str, List[float]] = {}
    for r in results:
        if r.best_native:
            groups.setdefault(r.group, []).append(r.ratio(r.best_native))
    return {g: _geomean(v) for g, v in groups.items()}


def write_json(results: List[Result], path: str) -> None:
    payload = {
        "machine": machine(),
        "results": [{"group": r.group, "name": r.name, "threads": r.threads, "ops": r.ops, "bytes": r.bytes,
                     "timings_us": {n: vars(t) for n, t in r.timings.items()}} for r in results],
    }
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)


def write_charts(results: List[Result], directory: str) -> List[str]:
    """One horizontal bar chart per group of the best-native/qtorch ratio; returns the PNG paths."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    paths = []
    groups: Dict[str, List[Result]] = {}
    for r in results:
        if r.best_native:
            groups.setdefault(r.group, []).append(r)
    for group, rs in groups.items():
        fig, ax = plt.subplots(figsize=(8, 0.3 * len(rs) + 1.2))
        labels = [f"{r.name} ({r.threads}t)" for r in rs]
        ratios = [r.ratio(r.best_native) for r in rs]
        ax.barh(labels, ratios, color=["tab:green" if x >= 1 else "tab:red" for x in ratios])
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_xlabel("best native time / qtorch time (>1: qtorch faster)")
        ax.set_title(f"qtorch vs native torch: {group}")
        ax.invert_yaxis()
        fig.tight_layout()
        path = os.path.join(directory, f"{group}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths
