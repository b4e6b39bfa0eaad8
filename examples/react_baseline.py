"""A ReAct prompting baseline on any leap-gym env through any OpenAI-compatible endpoint.

    # a local student behind the OpenAI protocol (or point --base-url at OpenAI/vLLM/SGLang instead)
    leap-gym serve runs/student --name student --port 8000 &
    python examples/react_baseline.py --env leap/ALFWorld-v0 --base-url http://127.0.0.1:8000/v1 --model student

The agent only sees the student view of ``info`` (``StudentView``), so this is the "teacher without privilege"
baseline when the model is the teacher's. Answers are cached under ``--cache`` so a rerun costs nothing.
"""

from __future__ import annotations

import argparse

import gymnasium as gym

import leap_gym  # noqa: F401  (registers the envs)
from leap_gym.agents.backends import OpenAIChat
from leap_gym.agents.react import ReActAgent
from leap_gym.wrappers import StudentView


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="leap/ALFWorld-v0")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="student")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--cache", default="runs/react_cache")
    args = parser.parse_args(argv)

    env = StudentView(gym.make(args.env))
    with OpenAIChat(args.model, args.base_url, api_key_env=args.api_key_env, cache_dir=args.cache,
                    max_tokens=args.max_tokens) as backend:
        agent = ReActAgent(backend, env=args.env)
        wins, score = 0, 0.0
        for i in range(args.episodes):
            obs, info = env.reset(seed=args.seed, options={"task_index": i})
            agent.reset(info["task"])
            while True:
                out = agent.act(obs, info)
                obs, _, terminated, truncated, info = env.step(out.action)
                if terminated or truncated:
                    break
            wins += int(info["won"])
            score += float(info["score"])
            print(f"episode {i}: won={info['won']} score={info['score']:.2f} task={info['task_id']}")
        print(f"success {wins}/{args.episodes}, mean score {score / max(args.episodes, 1):.3f}, "
              f"format errors {agent.format_errors}; usage {backend.usage.as_dict()}")
    env.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
