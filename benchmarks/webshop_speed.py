"""WebShop speed and memory: index build time, peak RSS, search p50 and click-step p50 per catalog size.

Each size runs in its own subprocess (so peak RSS is that size's alone) with a fresh index cache:

    python benchmarks/webshop_speed.py --sizes 1000,100000,1000000  # JSON to benchmarks/results/

With ``--reference-max`` (default 100,000), sizes up to it are also indexed and searched with bm25s's own
indexer and ``retrieve(k=50)`` on the same analysed text (query analysis excluded there) ("ref_*" columns):
the original's pyserini/Java engine cannot run here, so this is the in-process library reference.

Targets (issue 4): at 100k products search p50 <= 5 ms, click step p50 <= 0.5 ms, build <= 60 s; at 1M peak
RSS <= 4 GB. "search" is ``SearchIndex.search`` (analysis + BM25 scoring + top-50), uncached; "click step" is
``env.step("click[...]")`` with observation rendering and the full info (privileged expert plan included).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(n: int, queries: int, episodes: int) -> dict:
    import gymnasium as gym

    import leap_gym  # noqa: F401
    from leap_gym.envs.webshop.catalog import GeneratedCatalog
    from leap_gym.envs.webshop.search import SearchIndex

    base = _rss_mb()
    with tempfile.TemporaryDirectory() as cache:
        catalog = GeneratedCatalog(num_products=n, seed=0)
        t0 = time.perf_counter()
        index = SearchIndex.build(catalog.index_texts())
        build_s = time.perf_counter() - t0
        build_rss = _rss_mb()
        index.save(Path(cache) / "webshop" / catalog.cache_key)
        del index
        env = gym.make("leap/WebShop-v0", num_products=n, split="test", cache_dir=cache).unwrapped
        rng = random.Random(0)
        goals = env.goals
        qs = []
        for i in range(queries):
            g = goals[i % len(goals)]
            words = g["instruction_text"].split(", and price")[0].split()
            qs.append(" ".join(words[3:]) if i % 2 else f"{g['query']} {' '.join(g['attributes'])}")
        search_ms = []
        for q in qs:
            t = time.perf_counter()
            env.index.search(q)
            search_ms.append((time.perf_counter() - t) * 1e3)
        click_ms = []
        for ep in range(episodes):
            _, info = env.reset(seed=ep, options={"task_index": ep % len(goals)})
            for _ in range(15):
                acts = [a for a in info["admissible_actions"] if a.startswith("click[")]
                action = info["privileged"]["expert_action"]
                if rng.random() < 0.3 and acts and action.startswith("click["):
                    action = rng.choice([a for a in acts if a != "click[buy now]"] or acts)
                t = time.perf_counter()
                _, _, term, trunc, info = env.step(action)
                if action.startswith("click["):
                    click_ms.append((time.perf_counter() - t) * 1e3)
                if term or trunc:
                    break
    return {"num_products": n, "build_s": round(build_s, 2),
            "peak_rss_mb": round(max(build_rss, _rss_mb()), 1), "rss_before_mb": round(base, 1),
            "search_p50_ms": round(statistics.median(search_ms), 3),
            "search_p90_ms": round(statistics.quantiles(search_ms, n=10)[-1], 3),
            "click_p50_ms": round(statistics.median(click_ms), 4),
            "click_p90_ms": round(statistics.quantiles(click_ms, n=10)[-1], 4),
            "queries": len(search_ms), "clicks": len(click_ms)}


def run_reference(n: int, queries: int) -> dict:
    """bm25s's own indexer and retrieval on the same analysed text (the original's pyserini needs Java)."""
    import bm25s

    from leap_gym.envs.webshop.catalog import GeneratedCatalog
    from leap_gym.envs.webshop.search import Analyzer

    catalog = GeneratedCatalog(num_products=n, seed=0)
    analyzer = Analyzer()
    t0 = time.perf_counter()
    tokens = [analyzer.terms(t) for t in catalog.index_texts()]
    retriever = bm25s.BM25(method="lucene", k1=0.9, b=0.4)
    retriever.index(tokens, show_progress=False)
    build_s = time.perf_counter() - t0
    del tokens
    goals = catalog.goals("test")
    ms = []
    for i in range(queries):
        terms = analyzer.terms(goals[i % len(goals)]["instruction_text"])
        q = [t for t in terms if t in retriever.vocab_dict]
        t = time.perf_counter()
        retriever.retrieve([q], k=50, show_progress=False, n_threads=1)
        ms.append((time.perf_counter() - t) * 1e3)
    return {"num_products": n, "ref_build_s": round(build_s, 2), "ref_peak_rss_mb": round(_rss_mb(), 1),
            "ref_search_p50_ms": round(statistics.median(ms), 3)}


def _child(args: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                        os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,100000,1000000", help="comma-separated catalog sizes")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "webshop_speed.json"),
                    help="where to write the JSON results")
    ap.add_argument("--reference-max", type=int, default=100_000,
                    help="also time bm25s's own indexer/retrieval on sizes up to this (0: never)")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--one-ref", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.queries, args.episodes)))
        return 0
    if args.one_ref:
        print(json.dumps(run_reference(args.one_ref, args.queries)))
        return 0
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        try:
            row = _child(["--one", str(n), "--queries", str(args.queries), "--episodes", str(args.episodes)])
            if n <= args.reference_max:
                row.update(_child(["--one-ref", str(n), "--queries", str(args.queries)]))
                row["build_ratio_ref_over_ours"] = round(row["ref_build_s"] / row["build_s"], 2)
        except RuntimeError as e:
            print(e, file=sys.stderr)
            return 1
        rows.append(row)
        print(f"done {n}: {row}", file=sys.stderr)
    cols = ["num_products", "build_s", "peak_rss_mb", "search_p50_ms", "search_p90_ms", "click_p50_ms",
            "click_p90_ms", "ref_build_s", "ref_peak_rss_mb", "ref_search_p50_ms"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        cells = (f"{r[c]:,}" if isinstance(r.get(c), int) else str(r.get(c, "-")) for c in cols)
        print("| " + " | ".join(cells) + " |")
    from leap_gym.io import atomic_write_json

    atomic_write_json(args.out, {"python": sys.version.split()[0], "cpus": os.cpu_count(), "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
