"""A ReAct prompting baseline on any leap-gym env through any OpenAI-compatible endpoint.

    # a local student behind the OpenAI protocol (or point --base-url at OpenAI/vLLM/SGLang instead)
    leap-gym serve runs/student --name student --port 8000 &
    python examples/react_baseline.py --env leap/ALFWorld-v0 --base-url http://127.0.0.1:8000/v1 \
        --model student

The agent only sees the student view of ``info``, so this is the "teacher without privilege"
baseline when the model is the teacher's. Answers are cached under ``--cache`` so a rerun costs nothing.
"""

from __future__ import annotations

import argparse

from leap_gym.agents.backends import OpenAIChat
from leap_gym.agents.react import ReActAgent
from leap_gym.leap import evaluate


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
    parser.add_argument("--max-chars", type=int, default=None,
                        help="cap the chat at this many characters (e.g. 5000 for the 2k-token tiny model)")
    args = parser.parse_args(argv)

    with OpenAIChat(args.model, args.base_url, api_key_env=args.api_key_env, cache_dir=args.cache,
                    max_tokens=args.max_tokens) as backend:
        # evaluate() runs the episodes on the student view of info (never the privileged state)
        metrics, trajectories = evaluate(args.env,
                                         lambda: ReActAgent(backend, env=args.env, max_chars=args.max_chars),
                                         range(args.episodes), seed=args.seed, batch_size=1)
        for t in trajectories:
            print(f"episode {t.task_id}: won={t.won} score={t.score:.2f}")
        print(f"success {metrics['success']:.3f}, mean score {metrics['score']:.3f}, "
              f"invalid actions {metrics['invalid_action_rate']:.3f}; usage {backend.usage.as_dict()}")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
