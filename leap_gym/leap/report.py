"""Run outputs a person reads: the results table, the learning-curve PNG and a static HTML report.

The HTML report shows, per iteration, a few corrected episodes step by step: what the student saw and did, what
the teacher would have done instead, and whether that changed the action.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from leap_gym.io import atomic_write_bytes, atomic_write_text


def _label(row: dict[str, Any]) -> str:
    if row.get("agent") == "student":
        return row.get("name") or ("BC" if row.get("iteration") == 0 else f"LEAP iter {row.get('iteration')}")
    return str(row.get("name", row.get("key")))


def results_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table: one line per evaluated agent (teachers first, then the student's iterations)."""
    lines = [f"{'agent':<32} {'success':>8} {'score':>7} {'steps':>6} {'oracle agr.':>11} {'n':>5}", "-" * 74]
    for r in rows:
        if "success" not in r:
            continue
        agr = r.get("expert_agreement")
        lines.append(f"{_label(r):<32} {r['success']:>8.3f} {r['score']:>7.3f} {r.get('avg_steps', 0):>6.1f} "
                     f"{'-' if agr is None else f'{agr:.3f}':>11} {r.get('n', 0):>5}")
    return "\n".join(lines)


def write_learning_curve(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Success per iteration (0 = BC) with the teachers as horizontal reference lines."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    students = [r for r in rows if r.get("agent") == "student" and "success" in r]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    if students:
        ax.plot([r["iteration"] for r in students], [r["success"] for r in students], "o-", color="C0",
                label="student")
    styles = iter(["--", ":", "-."])
    for r in rows:
        if r.get("agent") in ("teacher", "baseline") and "success" in r:
            ax.axhline(r["success"], linestyle=next(styles, "--"), color="gray" if r["agent"] == "teacher" else "C3",
                       label=_label(r))
    ax.set_xlabel("iteration (0 = BC)")
    ax.set_ylabel("held-out success rate")
    ax.set_ylim(-0.02, 1.02)
    if students:
        ax.set_xticks([r["iteration"] for r in students])
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _esc(text: Any, limit: int | None = 400) -> str:
    s = str(text)
    if limit and len(s) > limit:
        s = s[:limit] + " ..."
    return html.escape(s)


_CSS = """body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;font-size:13px}th{background:#f3f3f3}
tr.changed td.teacher{background:#fff3cd}.ok{color:#080}.bad{color:#b00}details{margin:.5em 0}
code{white-space:pre-wrap}"""


def write_report(run_dir: str | Path, rows: list[dict[str, Any]], episodes_per_iteration: int = 5) -> None:
    """``run_dir/report.html``: results, the curve, and corrected episodes per iteration."""
    from leap_gym.leap.run import read_corrections_file

    run_dir = Path(run_dir)
    parts = [f"<!doctype html><meta charset='utf-8'><title>LEAP run {_esc(run_dir.name)}</title>",
             f"<style>{_CSS}</style><h1>LEAP run <code>{_esc(run_dir)}</code></h1>"]
    parts.append("<h2>Held-out results</h2><table><tr><th>agent</th><th>success</th><th>score</th>"
                 "<th>avg steps</th><th>invalid actions</th><th>per task type (success)</th></tr>")
    for r in rows:
        if "success" not in r:
            continue
        per = ", ".join(f"{k}: {v['success']:.2f} ({v['n']})" for k, v in r.get("per_type", {}).items())
        parts.append(f"<tr><td>{_esc(_label(r))}</td><td>{r['success']:.3f}</td><td>{r['score']:.3f}</td>"
                     f"<td>{r.get('avg_steps', 0):.1f}</td><td>{r.get('invalid_action_rate', 0):.2f}</td>"
                     f"<td>{_esc(per, None)}</td></tr>")
    parts.append("</table>")
    if (run_dir / "learning_curve.png").exists():
        parts.append("<img src='learning_curve.png' alt='learning curve'>")
    cfg = run_dir / "config.yaml"
    if cfg.exists():
        parts.append(f"<details><summary>config</summary><pre>{_esc(cfg.read_text(), None)}</pre></details>")
    i = 1
    while (run_dir / f"iter_{i}").exists():
        path = run_dir / f"iter_{i}" / "corrections.jsonl"
        if path.exists():
            trajs, fixes = read_corrections_file(path)
            parts.append(f"<h2>Iteration {i}: teacher corrections ({len(trajs)} episodes corrected)</h2>")
            for traj, cs in list(zip(trajs, fixes, strict=True))[:episodes_per_iteration]:
                parts.append(_episode_html(traj, cs))
        i += 1
    atomic_write_text(run_dir / "report.html", "\n".join(parts))


def _episode_html(traj, corrections) -> str:
    changed = sum(c.was_corrected for c in corrections)
    out = [f"<details><summary>{_esc(traj.task_id)}: {_esc(traj.task, 160)} "
           f"(<span class='{'ok' if traj.won else 'bad'}'>{'won' if traj.won else 'failed'}</span>, "
           f"{len(traj.steps)} steps, {changed} changed)</summary>",
           "<table><tr><th>t</th><th>observation</th><th>student reason / action</th>"
           "<th>teacher reason / action</th><th>changed</th></tr>"]
    by_step = {c.step_index: c for c in corrections}
    for t, step in enumerate(traj.steps):
        c = by_step.get(t)
        teacher = f"{_esc(c.reason)}<br><b>{_esc(c.action)}</b>" if c else ""
        cls = " class='changed'" if c and c.was_corrected else ""
        out.append(f"<tr{cls}><td>{t}</td><td>{_esc(step.observation, 300)}</td>"
                   f"<td>{_esc(step.reason)}<br><b>{_esc(step.action)}</b>"
                   f"{'' if step.action_valid else ' <span class=bad>(invalid)</span>'}</td>"
                   f"<td class='teacher'>{teacher}</td><td>{'yes' if c and c.was_corrected else ''}</td></tr>")
    out.append("</table></details>")
    return "\n".join(out)


def load_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
