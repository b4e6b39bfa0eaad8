"""Success on generated WebShop test goals: the env's privileged expert, a random agent, and the expert
teacher replayed as an agent at each privilege level (with the leak meter over its own corrections).

    python benchmarks/webshop_success.py --num-products 10000 --goals 500  # JSON to benchmarks/results/

"random" picks uniformly among the admissible actions and fills the search placeholder with 4 random words of
the instruction. Success = reward 1.0; steps are capped at ``--max-steps`` (LEAP trains with 15).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path


def run(env, policy, goals: int, max_steps: int, on_reset=None):
    wins, rewards, steps = 0, [], []
    for i in range(goals):
        obs, info = env.reset(seed=i, options={"task_index": i})
        if on_reset:
            on_reset(info)
        r, k = 0.0, 0
        while k < max_steps:
            k += 1
            obs, r, term, trunc, info = env.step(policy(obs, info))
            if term or trunc:
                break
        wins += info["won"]
        rewards.append(r)
        steps.append(k)
    return {"success": wins / goals, "mean_reward": statistics.mean(rewards),
            "mean_steps": statistics.mean(steps)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num-products", type=int, default=10_000)
    ap.add_argument("--goals", type=int, default=500)
    ap.add_argument("--max-steps", type=int, default=15)
    ap.add_argument("--out",
                    default=str(Path(__file__).resolve().parent / "results" / "webshop_success.json"))
    args = ap.parse_args(argv)

    import gymnasium as gym

    import leap_gym  # noqa: F401
    from leap_gym.agents.teachers import TeacherAgent
    from leap_gym.agents.teachers.leak import leak_report
    from leap_gym.agents.teachers.webshop import WebShopExpertTeacher

    env = gym.make("leap/WebShop-v0", num_products=args.num_products, split="test").unwrapped
    n = min(args.goals, len(env.goals))
    rows = {"expert (env privileged)": run(env,
                                           lambda o, i: i["privileged"]["expert_action"], n, args.max_steps)}
    rng = random.Random(0)

    def rand(obs, info):
        a = rng.choice(info["admissible_actions"])
        if a == "search[<query>]":
            words = info["task"].split(", and price")[0].split()
            a = f"search[{' '.join(rng.sample(words, min(4, len(words))))}]"
        return a

    rows["random"] = run(env, rand, n, args.max_steps)
    for level in (1.0, 0.5, 0.0):
        teacher = WebShopExpertTeacher(privilege=level)
        agent = TeacherAgent(teacher, "leap/WebShop-v0")
        trajs = []

        def start(info, agent=agent, trajs=trajs):
            agent.reset(info["task"])
            agent.trajectory.task_id = info["task_id"]
            trajs.append(agent.trajectory)

        row = run(env, lambda o, i, agent=agent: agent.act(o, i).action, n, args.max_steps, on_reset=start)
        leaks = leak_report((tr, teacher.correct(tr)) for tr in trajs)
        row.update({"leak_steps": leaks.steps, "leaks": leaks.leaks})
        rows[f"teacher privilege {level}"] = row
    print(f"| agent ({n} test goals, {args.num_products:,} products, {args.max_steps} steps) | success | "
          "mean reward | mean steps | leaks / reasons |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        leak = f"{r['leaks']} / {r['leak_steps']}" if "leaks" in r else "-"
        print(f"| {name} | {r['success']:.3f} | {r['mean_reward']:.3f} | {r['mean_steps']:.1f} | {leak} |")
    from leap_gym.io import atomic_write_json

    atomic_write_json(args.out, {"num_products": args.num_products, "goals": n, "max_steps": args.max_steps,
                                 "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
