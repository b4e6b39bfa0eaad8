"""Run outputs a person reads: the results table, the learning and loss curves (PNG) and a static HTML report.

The HTML report shows the held-out results with 95% confidence intervals (overall and per task type), the
learning and training-loss curves, the wall time of every stage, a few of the student's own held-out episodes,
and, per iteration, a few corrected episodes step by step: what the student saw and did, what the teacher
would have done instead, and whether that changed the action.
"""

from __future__ import annotations

import html
import io
import math
from pathlib import Path
from typing import Any

from leap_gym.io import atomic_write_bytes, atomic_write_text
from leap_gym.leap.layout import (
    STAGE_KINDS,
    RunLayout,
    read_corrections,
    read_json,
    read_output,
    trajectories_of,
)
from leap_gym.records import read_trajectories

# matplotlib (the train extra) is imported where a figure is drawn: the table and the HTML report need only
# the standard library.

# One line per column of the results table, shown under it: a number is worth showing with what it counts.
DEFINITIONS = {
    "success": "share of held-out episodes won; the bracket is the 95% Wilson score interval for n episodes.",
    "oracle agreement": "share of steps, among those where the env's privileged oracle names an action, on "
                        "which the agent took that action (case-insensitive); read from the recorded state "
                        "afterwards, never shown to the student.",
    "format errors": "share of steps whose model output held no parseable action (no ACTION: line or code "
                     "block); the env then received an invalid action.",
    "invalid actions": "share of steps on which the env rejected the action as not valid in that state.",
}


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion: unlike the normal approximation it stays inside [0, 1]
    and is not of width 0 at 0 or n successes, both common in small evaluations (n=100: about +/-0.1)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def success_interval(rates: dict[str, Any]) -> tuple[float, float]:
    """The 95% interval of a ``summarize`` success rate (``success`` is a mean over ``n`` episodes)."""
    n = int(rates.get("n", 0))
    return wilson_interval(round(rates["success"] * n), n)


def iteration_name(i: int) -> str:
    """How results name iteration ``i``'s student: behaviour cloning, then the LEAP iterations."""
    return "BC" if i == 0 else f"LEAP iter {i}"


def _label(row: dict[str, Any]) -> str:
    if row.get("agent") == "student":
        return row.get("name") or iteration_name(row.get("iteration"))
    return str(row.get("name", row.get("key")))


def results_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table: one line per evaluated agent (teachers first, then the student's iterations)."""
    lines = [f"{'agent':<32} {'success':>7} {'95% CI':>13} {'score':>7} {'steps':>6} {'oracle agr.':>11} "
             f"{'n':>5}", "-" * 86]
    for r in rows:
        if "success" not in r:
            continue
        agr = r.get("expert_agreement")
        lo, hi = success_interval(r)
        agr_text = "-" if agr is None else f"{agr:.3f}"
        lines.append(f"{_label(r):<32} {r['success']:>7.3f} {f'[{lo:.2f}, {hi:.2f}]':>13} {r['score']:>7.3f} "
                     f"{r.get('avg_steps', 0):>6.1f} {agr_text:>11} {r.get('n', 0):>5}")
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    _pyplot().close(fig)
    atomic_write_bytes(path, buf.getvalue())


def write_learning_curve(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Success per iteration (0 = BC) with 95% intervals as error bars, the teachers as horizontal reference
    lines with their intervals shaded."""
    plt = _pyplot()
    students = [r for r in rows if r.get("agent") == "student" and "success" in r]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    if students:
        xs, ys = [r["iteration"] for r in students], [r["success"] for r in students]
        cis = [success_interval(r) for r in students]
        ax.errorbar(xs, ys, yerr=[[y - lo for y, (lo, _) in zip(ys, cis, strict=True)],
                                  [hi - y for y, (_, hi) in zip(ys, cis, strict=True)]],
                    fmt="o-", color="C0", capsize=4, label="student (95% CI)")
    styles = iter(["--", ":", "-."])
    for r in rows:
        if r.get("agent") in ("teacher", "baseline") and "success" in r:
            color = "gray" if r["agent"] == "teacher" else "C3"
            ax.axhline(r["success"], linestyle=next(styles, "--"), color=color, label=_label(r))
            ax.axhspan(*success_interval(r), color=color, alpha=0.08)
    ax.set_xlabel("iteration (0 = BC)")
    ax.set_ylabel("held-out success rate")
    ax.set_ylim(-0.02, 1.02)
    if students:
        ax.set_xticks([r["iteration"] for r in students])
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def loss_curves(layout: RunLayout) -> dict[int, dict[str, Any]]:
    """Per trained iteration: the method and the (step, loss) points of the trainer's log history, or the
    final mean loss at the last step when training was shorter than one logging interval. An unreadable log
    (a stage being redone) is left out."""
    out: dict[int, dict[str, Any]] = {}
    for i in layout.trained_iterations():
        log = read_output(layout.train(i).log, read_json)
        if log is None:
            continue
        points = [(h["step"], h["loss"]) for h in log.get("log_history", []) if "loss" in h and "step" in h]
        m = log.get("metrics", {})
        if not points and "train_loss" in m:
            points = [(m.get("global_steps", 0), m["train_loss"])]
        out[i] = {"method": m.get("method", "sft"), "points": points}
    return out


def write_loss_curves(layout: RunLayout) -> bool:
    """Training loss against the optimiser step, one line per iteration; False (nothing written) before any
    training finished."""
    curves = loss_curves(layout)
    if not curves:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for i, c in curves.items():
        xs, ys = zip(*c["points"], strict=True) if c["points"] else ((), ())
        ax.plot(xs, ys, "o-" if len(xs) < 20 else "-", markersize=3,
                label=f"{'BC' if i == 0 else f'iter {i}'} ({c['method']})")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("optimiser step within the iteration")
    ax.set_ylabel("training loss")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, layout.loss_curves)
    return True


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


# -- HTML --------------------------------------------------------------------------------------------------
def _esc(text: Any, limit: int | None = 400) -> str:
    s = str(text)
    if limit and len(s) > limit:
        s = s[:limit] + " ..."
    return html.escape(s)


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _success_cell(rates: dict[str, Any]) -> str:
    lo, hi = success_interval(rates)
    return f"<b>{rates['success']:.2f}</b> <span class=ci>[{lo:.2f}, {hi:.2f}]</span>"


_CSS = """body{font-family:sans-serif;margin:1.5em 2em;max-width:1300px;color:#222;line-height:1.4}
h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;
font-size:14px}th{background:#f3f3f3;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.ci{color:#666;font-size:12px}.ok{color:#080}.bad{color:#b00}summary{cursor:pointer}
details{margin:.5em 0}details details{margin-left:1.2em}
tr.changed td.teacher{background:#fff3cd}tr.agree td.oracle{color:#080}
td.obs{white-space:pre-wrap;max-width:480px}
table.episode{width:100%}code{white-space:pre-wrap}.raw{color:#888;font-size:12px}
dl.defs{font-size:13px;color:#444;margin:.4em 0}dl.defs dt{font-weight:bold;float:left;clear:left;width:9.5em}
dl.defs dd{margin-left:10em;margin-bottom:.2em}.figs{display:flex;flex-wrap:wrap;gap:12px}
.bar{display:inline-block;height:10px;background:#7aa6d6;vertical-align:middle}.meta{color:#555}"""


def write_report(layout: RunLayout, rows: list[dict[str, Any]], episodes_per_iteration: int = 5,
                 heldout_episodes: int = 3) -> None:
    """The run's ``report.html``: results with intervals, per-type table, curves, stage times, the student's
    own held-out episodes, and corrected episodes per iteration."""
    name = layout.root.name
    evaluated = [r for r in rows if "success" in r]
    parts = [f"<!doctype html><meta charset='utf-8'><title>LEAP run {_esc(name)}</title>",
             f"<style>{_CSS}</style><h1>LEAP run <code>{_esc(name)}</code></h1>",
             _run_summary(layout)]
    if layout.config.exists():
        parts.append(f"<details><summary>config</summary><pre>{_esc(layout.config.read_text(), None)}</pre>"
                     "</details>")
    parts.append("<h2>Held-out results</h2>" + _results_html(evaluated))
    parts.append("<h2>Per task type (held-out success)</h2>" + _per_type_html(evaluated))
    pngs = ((layout.learning_curve, "learning curve"), (layout.loss_curves, "training loss curves"))
    # the report sits beside the figures: they are linked by file name
    figs = [f"<img src='{png.name}' alt='{alt}' width='600' height='400'>"
            for png, alt in pngs if png.exists()]
    if figs:
        parts.append("<h2>Curves</h2><div class=figs>" + "".join(figs) + "</div>")
    parts.append("<h2>Wall time per stage</h2>" + _stages_html(layout.load_stages()))
    parts.append(_heldout_html(layout, rows, heldout_episodes))
    parts.append(_corrections_html(layout, episodes_per_iteration))
    atomic_write_text(layout.report, "\n".join(parts))


def _run_summary(layout: RunLayout) -> str:
    if not layout.config.exists():
        return ""
    c = layout.load_config()
    return (f"<p class=meta>{_esc(c.env.env_id)}, student <code>{_esc(c.student.model)}</code>, "
            f"teacher {_esc(c.teacher.kind)} (privilege {c.teacher.privilege:g}), "
            f"{c.iterations} LEAP iterations ({_esc(c.training.method)}), {c.env.num_train_tasks} train / "
            f"{c.evaluation.num_test_tasks} held-out tasks; directory <code>{_esc(layout.root)}</code></p>")


def _results_html(rows: list[dict[str, Any]]) -> str:
    out = ["<table id=results><tr><th>agent</th><th>success [95% CI]</th><th>score</th><th>avg steps</th>"
           "<th>oracle agreement</th><th>format errors</th><th>invalid actions</th><th>n</th>"
           "<th>eval time</th></tr>"]
    for r in rows:
        wall = r.get("wall_s")
        out.append(f"<tr><td>{_esc(_label(r))}</td><td class=num>{_success_cell(r)}</td>"
                   f"<td class=num>{r['score']:.3f}</td><td class=num>{r.get('avg_steps', 0):.1f}</td>"
                   f"<td class=num>{_rate(r.get('expert_agreement'))}</td>"
                   f"<td class=num>{_rate(r.get('format_error_rate'))}</td>"
                   f"<td class=num>{_rate(r.get('invalid_action_rate'))}</td>"
                   f"<td class=num>{r.get('n', 0)}</td>"
                   f"<td class=num>{'-' if wall is None else _duration(wall)}</td></tr>")
    out.append("</table><dl class=defs>")
    out += [f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in DEFINITIONS.items()]
    out.append("</dl>")
    return "".join(out)


def _per_type_html(rows: list[dict[str, Any]]) -> str:
    types = sorted({t for r in rows for t in r.get("per_type", {})})
    if not types:
        return "<p>No per-type results.</p>"
    out = ["<table id=per_type><tr><th>agent</th>" + "".join(f"<th>{_esc(t)}</th>" for t in types) + "</tr>"]
    for r in rows:
        cells = []
        for t in types:
            v = r.get("per_type", {}).get(t)
            cells.append("<td>-</td>" if v is None else
                         f"<td class=num>{_success_cell(v)} <span class=ci>n={v['n']}</span></td>")
        out.append(f"<tr><td>{_esc(_label(r))}</td>{''.join(cells)}</tr>")
    out.append("</table>")
    return "".join(out)


def _stages_html(stages: dict[str, dict[str, Any]]) -> str:
    """One row per iteration (building the base model counts to BC, the teachers' evaluations have their own
    row), one column per kind of stage, a bar for the row's share of the run's total."""
    if not stages:
        return "<p>No stage times recorded.</p>"
    # rows (iterations, then others) in the order they first started
    grid: dict[int | str, dict[str, float]] = {}
    peaks: dict[int | str, float] = {}  # the row's highest stage peak (stages.json has it since 2026-12)
    for name, s in sorted(stages.items(), key=lambda kv: kv[1]["started"]):
        i, kind = RunLayout.stage_kind(name)
        row = kind if i is None else i
        grid.setdefault(row, {})
        grid[row][kind] = grid[row].get(kind, 0.0) + float(s["wall_s"])
        if "peak_rss_mib" in s:
            peaks[row] = max(peaks.get(row, 0.0), float(s["peak_rss_mib"]))
    kinds = [k for k in STAGE_KINDS if any(k in v for v in grid.values())]
    kinds += sorted({k for v in grid.values() for k in v} - set(kinds))
    total = sum(sum(v.values()) for v in grid.values()) or 1.0
    out = ["<table id=stages><tr><th></th>" + "".join(f"<th>{_esc(k)}</th>" for k in kinds)
           + "<th>total</th><th></th>" + ("<th>peak memory</th>" if peaks else "") + "</tr>"]
    for row, v in grid.items():
        label = row.replace("_", " ") if isinstance(row,
                                                    str) else "BC (iter 0)" if row == 0 else f"iter {row}"
        cells = "".join(f"<td class=num>{_duration(v[k]) if k in v else ''}</td>" for k in kinds)
        share = sum(v.values()) / total
        out.append(f"<tr><td>{_esc(label)}</td>{cells}<td class=num>{_duration(sum(v.values()))}</td>"
                   f"<td><span class=bar style='width:{200 * share:.0f}px'></span> {100 * share:.0f}%</td>"
                   + (f"<td class=num>{peaks[row] / 1024:.1f} GB</td>" if row in peaks else
                      "<td></td>" if peaks else "") + "</tr>")
    first = min(s["started"] for s in stages.values())
    out.append(f"</table><p class=meta>{_duration(total)} in recorded stages (first started {_esc(first)}); "
               "a resumed run keeps the times of the stages it skipped"
               + ("; peak memory: the highest resident set of the row's stages" if peaks else "") + ".</p>")
    return "".join(out)


def _pick_episodes(trajs: list, k: int) -> list:
    """Up to ``k`` episodes, failures first (what a researcher looks for), then wins, each in task order."""
    return ([t for t in trajs if not t.won] + [t for t in trajs if t.won])[:k]


def _heldout_html(layout: RunLayout, rows: list[dict[str, Any]], k: int) -> str:
    out = ["<h2>The student's own held-out episodes</h2><p class=meta>Evaluation episodes on the test tasks, "
           "failures first; the oracle column is the env's privileged expert action at that step "
           "(for reading only: the student never sees it).</p>"]
    found = False
    evaluated = sorted((r["iteration"], r) for r in rows if r.get("agent") == "student" and "success" in r)
    for n, (i, r) in enumerate(reversed(evaluated)):
        path = trajectories_of(layout.evaluation(i))
        if not path.exists():
            continue
        found = True
        trajs = read_trajectories(path)
        out.append(f"<details{' open' if n == 0 else ''}><summary><b>{_esc(_label(r))}</b>: "
                   f"{sum(t.won for t in trajs)}/{len(trajs)} won; {min(k, len(trajs))} shown</summary>")
        out += [_heldout_episode_html(t, open_=n == 0 and j == 0)
                for j, t in enumerate(_pick_episodes(trajs, k))]
        out.append("</details>")
    if not found:
        out.append("<p>No evaluated student yet.</p>")
    return "\n".join(out)


def _outcome(traj) -> str:
    return (f"<span class='{'ok' if traj.won else 'bad'}'>{'won' if traj.won else 'failed'}</span>, "
            f"score {traj.score:.2f}, {len(traj.steps)} steps")


def _action_cell(step) -> str:
    cell = f"{_esc(step.reason)}<br><b>{_esc(step.action)}</b>"
    if not step.action_valid:
        cell += " <span class=bad>(invalid)</span>"
        if step.raw_output:
            cell += f"<br><span class=raw>model output: {_esc(step.raw_output, 200)}</span>"
    return cell


def _heldout_episode_html(traj, open_: bool = False) -> str:
    out = [f"<details{' open' if open_ else ''}><summary>{_esc(traj.task_id)}: {_esc(traj.task, 160)} "
           f"({_outcome(traj)})</summary>",
           "<table class=episode><tr><th>t</th><th>observation</th><th>student reason / action</th>"
           "<th>oracle action</th><th>reward</th></tr>"]
    for t, step in enumerate(traj.steps):
        oracle = str(step.info.get("privileged", {}).get("expert_action") or "")
        agree = oracle and oracle.strip().lower() == step.action.strip().lower()
        out.append(f"<tr{' class=agree' if agree else ''}><td>{t}</td>"
                   f"<td class=obs>{_esc(step.observation, 600)}</td>"
                   f"<td>{_action_cell(step)}</td><td class=oracle>{_esc(oracle)}</td>"
                   f"<td class=num>{step.reward:g}</td></tr>")
    out.append("</table></details>")
    return "\n".join(out)


def _corrections_html(layout: RunLayout, k: int) -> str:
    out = []
    for i in layout.iterations(start=1):
        path = layout.corrections(i)
        if path.exists():
            trajs, corrections = read_corrections(path)
            out.append(f"<h2>Iteration {i}: teacher corrections ({len(trajs)} episodes corrected)</h2>")
            out += [_episode_html(traj, cs) for traj, cs in list(zip(trajs, corrections, strict=True))[:k]]
    return "\n".join(out)


def _episode_html(traj, corrections) -> str:
    changed = sum(c.was_corrected for c in corrections)
    out = [f"<details><summary>{_esc(traj.task_id)}: {_esc(traj.task, 160)} ({_outcome(traj)}, "
           f"{changed} changed)</summary>",
           "<table class=episode><tr><th>t</th><th>observation</th><th>student reason / action</th>"
           "<th>teacher reason / action</th><th>changed</th></tr>"]
    by_step = {c.step_index: c for c in corrections}
    for t, step in enumerate(traj.steps):
        c = by_step.get(t)
        teacher = f"{_esc(c.reason)}<br><b>{_esc(c.action)}</b>" if c else ""
        cls = " class='changed'" if c and c.was_corrected else ""
        out.append(f"<tr{cls}><td>{t}</td><td class=obs>{_esc(step.observation, 300)}</td>"
                   f"<td>{_action_cell(step)}</td>"
                   f"<td class='teacher'>{teacher}</td>"
                   f"<td>{'yes' if c and c.was_corrected else ''}</td></tr>")
    out.append("</table></details>")
    return "\n".join(out)
