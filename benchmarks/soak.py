"""Soak: N vector envs of each registered env step random admissible actions with autoreset for a while;
memory, file descriptors, threads and child processes must stay flat.

For each env id in turn, ``gym.make_vec`` builds ``--num-envs`` copies (``--mode async`` by default: worker
processes, pipes and shared memory are part of what could leak; InterCode's sandbox helpers are children too)
and steps them for its share of ``--seconds`` (the total is split evenly across the env ids). Every
``--sample-every`` seconds the process tree is read from /proc: RSS, open descriptors and threads of this
process and of all its descendants, the number of live descendants and of zombies among them, and the steps
done.

The claim kept is "flat" over the second half of each env's run. Sandboxes and their helpers come and go with
episodes (closed helpers are reaped lazily, so a few zombies come and go too), so single samples jitter: the
growth of a metric over the second half is its highest value in the run's last quarter minus its highest in
the third quarter (a leak raises that ceiling, churn does not). Descriptors may grow by at most
``--max-fd-growth``, live children and zombies by ``--max-child-growth``, the tree's RSS by
``--max-rss-growth-mb``; after ``close()`` no child may be left beyond those alive before the envs were built.
The script exits 1 when any check fails.

Task pool: ALFWorld keeps each translated game in bounded per-process caches (32 live, ~1000 packed, 512
generated), and its generated tasks give a new game at nearly every reset, so the caches' filling (about 1 MB
of RSS per new game per process, past the first 32) would read as growth for many minutes. ``--pool 8`` (the
default) gives envs that take ``num_tasks`` (ALFWorld, InterCode Bash) eight tasks, each loaded by every
sub-env before sampling starts: what still grows is a leak. ``--pool 0`` soaks the envs' default task ranges.

Actions: ALFWorld and WebShop pick uniformly from ``info["admissible_actions"]`` (WebShop's search placeholder
is filled with words of the task); InterCode Bash, which has no admissible list, picks from a few harmless
commands and ``submit``.

    python benchmarks/soak.py [--seconds 300] [--num-envs 8] [--mode async|sync] [--envs leap/WebShop-v0 ...]
"""

from __future__ import annotations

import argparse
import inspect
import os
import random
import sys
import time
from pathlib import Path

import common  # puts the repo on sys.path
import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

import leap_gym

BASH_ACTIONS = ("ls", "ls -la", "pwd", "echo hello", "date", "whoami", "uname -a", "cat /etc/hostname",
                "wc -l /etc/passwd", "find . -maxdepth 1", "head -n 3 /etc/passwd", "submit")
WEBSHOP_SEARCH = "search[<query>]"
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20
METRICS = ("rss_mb", "fds", "threads", "children", "zombies")


def _proc_table() -> dict[int, tuple[int, str, int, float]]:
    """pid -> (ppid, state, threads, RSS MiB) for every readable /proc entry."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:  # exited while listing
            continue
        fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces and parentheses
        table[int(name)] = (int(fields[1]), fields[0], int(fields[17]), int(fields[21]) * _PAGE_MB)
    return table


def _fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:  # exited, or a sandbox process /proc does not let us inspect
        return 0


def sample_tree(pid: int | None = None) -> dict:
    """RSS, descriptors and threads of ``pid`` plus all its descendants; live descendants and zombies
    counted."""
    pid = pid or os.getpid()
    table = _proc_table()
    kids: dict[int, list[int]] = {}
    for p, (ppid, *_rest) in table.items():
        kids.setdefault(ppid, []).append(p)
    tree, stack = [], list(kids.get(pid, []))
    while stack:
        p = stack.pop()
        tree.append(p)
        stack.extend(kids.get(p, []))
    zombies = [p for p in tree if table[p][1] == "Z"]
    live = [p for p in tree if table[p][1] != "Z"]
    own = table.get(pid, (0, "R", 0, 0.0))
    return {"rss_mb": own[3] + sum(table[p][3] for p in live), "own_rss_mb": own[3],
            "fds": _fd_count(pid) + sum(_fd_count(p) for p in live), "own_fds": _fd_count(pid),
            "threads": own[2] + sum(table[p][2] for p in live), "children": len(live),
            "zombies": len(zombies)}


def pick_action(env_id: str, info: dict, i: int, rng: random.Random) -> str:
    """A random admissible action for sub-env ``i`` of a vector env's (nested) info."""
    if "InterCodeBash" in env_id:
        return rng.choice(BASH_ACTIONS)
    admissible = info.get("admissible_actions")
    options = list(admissible[i]) if admissible is not None and admissible[i] is not None else []
    if not options:
        return "look"
    action = rng.choice(options)
    if action == WEBSHOP_SEARCH:
        words = str(info["task"][i]).split()
        action = "search[" + " ".join(rng.sample(words, min(3, len(words)))) + "]"
    return action


def rss_slope_mb_per_min(samples: list[dict]) -> float:
    """Least-squares slope of the tree's RSS against time, MiB per minute."""
    if len(samples) < 2:
        return 0.0
    ts = [s["t"] for s in samples]
    ys = [s["rss_mb"] for s in samples]
    mt, my = sum(ts) / len(ts), sum(ys) / len(ys)
    var = sum((t - mt) ** 2 for t in ts)
    return 60 * sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / var if var else 0.0


def _window(samples: list[dict], lo: float, hi: float) -> list[dict]:
    """The samples taken between ``lo`` and ``hi`` seconds, or the one nearest ``lo`` when none was."""
    return [s for s in samples if lo <= s["t"] <= hi] or [min(samples, key=lambda s: abs(s["t"] - lo))]


def pool_kwargs(env_id: str, pool: int) -> dict:
    """``num_tasks=pool`` for envs whose constructor takes it (ALFWorld, InterCode Bash); nothing
    otherwise."""
    if not pool:
        return {}
    params = inspect.signature(load_env_creator(gym.spec(env_id).entry_point)).parameters
    return {"num_tasks": pool} if "num_tasks" in params else {}


def soak_env(env_id: str, num_envs: int, mode: str, seconds: float, sample_every: float, seed: int,
             pool: int) -> dict:
    rng = random.Random(seed)
    before = sample_tree()
    t_build = time.monotonic()
    kwargs = pool_kwargs(env_id, pool)
    venv = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode, **kwargs)
    for index in range(kwargs.get("num_tasks", 0)):  # every sub-env loads every task once: caches warm
        venv.reset(seed=seed, options={"task_index": index})
    _, info = venv.reset(seed=seed)
    build_s = time.monotonic() - t_build
    steps = episodes = 0
    t0 = time.monotonic()
    samples = [{"t": 0.0, "steps": 0, **sample_tree()}]
    next_sample = sample_every
    while (now := time.monotonic() - t0) < seconds:
        actions = tuple(pick_action(env_id, info, i, rng) for i in range(num_envs))
        _, _, term, trunc, info = venv.step(actions)
        steps += num_envs
        episodes += int(sum(term) + sum(trunc))
        if now >= next_sample:
            samples.append({"t": round(now, 2), "steps": steps, **sample_tree()})
            next_sample = now + sample_every
    samples.append({"t": round(time.monotonic() - t0, 2), "steps": steps, **sample_tree()})
    venv.close()
    deadline = time.monotonic() + 5  # give exiting workers and helpers a moment to be reaped
    while (after := sample_tree())["children"] + after["zombies"] > before["children"] + before["zombies"] \
            and time.monotonic() < deadline:
        time.sleep(0.1)

    total = samples[-1]["t"]
    third, fourth = _window(samples, 0.5 * total, 0.75 * total), _window(samples, 0.75 * total, total)
    row = {"env": env_id, "num_envs": num_envs, "mode": mode, "env_kwargs": kwargs, "seconds": total,
           "build_s": build_s,
           "steps": steps, "episodes_ended": episodes, "steps_per_s": steps / max(total, 1e-9),
           "samples": samples, "before": before, "after_close": after,
           "rss_slope_2nd_half_mb_per_min": rss_slope_mb_per_min([s for s in samples if s["t"] >= total / 2])}
    for m in METRICS:
        row[m] = {"start": samples[0][m], "end": samples[-1][m], "max": max(s[m] for s in samples),
                  "growth_2nd_half": max(s[m] for s in fourth) - max(s[m] for s in third)}
    return row


def checks(row: dict, max_fd: int, max_child: int, max_rss_mb: float) -> list[str]:
    """The failed "flat" checks of one env's row, as sentences."""
    g = {m: row[m]["growth_2nd_half"] for m in METRICS}
    failed = []
    if g["fds"] > max_fd:
        failed.append(f"descriptors grew by {g['fds']} (> {max_fd}) over the second half")
    if g["children"] > max_child or g["zombies"] > max_child:
        failed.append(f"children grew by {g['children']}, zombies by {g['zombies']} (> {max_child}) "
                      "over the second half")
    if g["rss_mb"] > max_rss_mb:
        failed.append(f"RSS grew by {g['rss_mb']:.1f} MiB (> {max_rss_mb}) over the second half")
    before, after = row["before"], row["after_close"]
    if after["children"] + after["zombies"] > before["children"] + before["zombies"]:
        failed.append(f"close() left {after['children'] - before['children']} children and "
                      f"{after['zombies'] - before['zombies']} zombies")
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="*", default=None,
                        help="env ids (default: every registered leap env)")
    parser.add_argument("--seconds", type=float, default=300,
                        help="total stepping time, split evenly across envs")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--mode", choices=["async", "sync"], default="async", help="gym.make_vec's mode")
    parser.add_argument("--sample-every", type=float, default=1.0, help="seconds between /proc samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool", type=int, default=8,
                        help="num_tasks for envs that take it, each task loaded by every sub-env before "
                             "sampling (0: the env's default, a new game nearly every reset)")
    # InterCode's sandboxes (one per sub-env plus two spares each, about 2 processes and 12 descriptors
    # apiece) are rebuilt every episode: the bounds allow two more alive at the last quarter's peak; a leak of
    # one child or descriptor per episode adds hundreds.
    parser.add_argument("--max-fd-growth", type=int, default=24, help="descriptors, second half")
    parser.add_argument("--max-child-growth", type=int, default=4,
                        help="live children, and zombies, second half")
    parser.add_argument("--max-rss-growth-mb", type=float, default=32.0, help="tree RSS, second half")
    parser.add_argument("--results-dir", default=str(common.RESULTS_DIR), help="where soak.json/.md go")
    parser.add_argument("--quick", action="store_true", help="30 s in all, 4 envs")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.num_envs = 30.0, 4
    env_ids = args.envs or leap_gym.list_envs()
    per_env = args.seconds / len(env_ids)

    rows, failures = [], {}
    for k, env_id in enumerate(env_ids):
        row = soak_env(env_id, args.num_envs, args.mode, per_env, args.sample_every, args.seed + k, args.pool)
        failed = checks(row, args.max_fd_growth, args.max_child_growth, args.max_rss_growth_mb)
        row["flat"] = not failed
        if failed:
            failures[env_id] = failed
        rows.append(row)
        print(f"{env_id}: {row['steps']} steps in {row['seconds']:.0f} s, "
              f"{'flat' if not failed else '; '.join(failed)}", flush=True)

    table = [{"env": r["env"], "steps": r["steps"], "steps/s": r["steps_per_s"],
              **{f"{label} start/end/max": "/".join(f"{r[m][x]:.0f}" for x in ("start", "end", "max"))
                 for m, label in (("rss_mb", "RSS MiB"), ("fds", "fds"), ("threads", "threads"),
                                  ("children", "children"), ("zombies", "zombies"))},
              "RSS MiB/min (2nd half)": r["rss_slope_2nd_half_mb_per_min"],
              "flat": "yes" if r["flat"] else "NO"} for r in rows]
    md = (f"{args.num_envs} {args.mode} vector envs per env id, {per_env:.0f} s each, random admissible "
          f"actions, autoreset, task pool {args.pool or 'default'} (where the env takes num_tasks, loaded "
          "once first); RSS, descriptors and threads are this process plus all its descendants (workers, "
          f"sandbox helpers), sampled every {args.sample_every:g} s. Flat = the highest value in the last "
          f"quarter exceeds the highest in the third quarter by <= {args.max_fd_growth} descriptors, <= "
          f"{args.max_child_growth} children or zombies and <= {args.max_rss_growth_mb:g} MiB of RSS; "
          "close() leaves no child.\n\n" + common.markdown_table(table, list(table[0])) + "\n")
    print("\n" + md)
    command = " ".join(["python", "benchmarks/soak.py", *(sys.argv[1:] if argv is None else argv)])
    common.save("soak", {"settings": {**vars(args), "seconds_per_env": per_env}, "rows": rows,
                         "failures": failures, "flat": not failures}, md, command,
                results_dir=Path(args.results_dir))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
