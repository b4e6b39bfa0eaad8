"""Helpers shared by the benchmark scripts: machine facts, timing statistics, JSON + Markdown output."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import resource
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from leap_gym.io import atomic_write_json, atomic_write_text  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """Cores, CPU model, GPU (if any), Python and date: printed above every table."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10)
        gpu = out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "gpu": gpu, "python": platform.python_version(),
            "date": _dt.date.today().isoformat()}


def stats_ms(samples_s: Sequence[float]) -> dict:
    """Median and p90 in milliseconds."""
    xs = sorted(samples_s)
    if not xs:
        return {"median_ms": float("nan"), "p90_ms": float("nan"), "n": 0}
    p90 = xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]
    return {"median_ms": 1000 * statistics.median(xs), "p90_ms": 1000 * p90, "n": len(xs)}


def peak_rss_mb() -> float:
    """Peak resident memory of this process (and of waited-for children), in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def save(suite: str, result: dict, markdown: str, command: str, results_dir: Path = RESULTS_DIR) -> Path:
    """Write results/<suite>.json and results/<suite>.md (machine, command, table) atomically."""
    results_dir.mkdir(parents=True, exist_ok=True)
    info = machine()
    header = (f"Command: `{command}`  \nMachine: {info['cores']} cores, {info['cpu']}"
              f"{', GPU ' + info['gpu'] if info['gpu'] else ', no GPU'}; Python {info['python']}; "
              f"{info['date']}\n\n")
    atomic_write_json(results_dir / f"{suite}.json",
                      {"suite": suite, "command": command, "machine": info, **result})
    path = results_dir / f"{suite}.md"
    atomic_write_text(path, header + markdown + "\n")
    return path
