"""Loading the original's data format at scale: time and peak RSS of ``FileCatalog`` (streamed to its on-disk
store) and of building its search index, on a file in the original format written from the procedural catalog.

    python benchmarks/webshop_fileload.py --products 100000

The real ``items_shuffle.json`` (1.18M products, ~5 GB) is not available here; this writes ``--products``
products in its format (with ``items_ins_v2.json`` and ``items_human_ins.json``) to a temporary directory
first.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_original_format(n: int, out: Path) -> None:
    from leap_gym.envs.webshop.catalog import GeneratedCatalog

    cat = GeneratedCatalog(num_products=max(n, 1000), seed=0)
    ins, human = {}, {}
    with open(out / "items_shuffle.json", "w", encoding="utf-8") as f:
        f.write("[")
        for i in range(n):
            p = cat.product(i)
            pricing = None if p["Price"] == "$100.0" else " - ".join(f"${v}" for v in p["pricing"])
            raw = {"asin": p["asin"], "name": p["Title"], "full_description": p["Description"],
                   "small_description": p["BulletPoints"], "pricing": pricing, "images": ["img"],
                   "customization_options": {g: [{"value": v, "image": None} for v in vs]
                                             for g, vs in p["options"].items()} or None,
                   "category": p["category"], "query": p["query"], "product_category": p["product_category"],
                   "brand": "x", "product_information": {"a": "b"}}
            f.write(("," if i else "") + json.dumps(raw))
            ins[p["asin"]] = {"attributes": p["Attributes"], "instruction": "", "instruction_attributes": []}
        f.write("]")
    for g in cat.goals("all"):
        if cat.index_of(g["asin"]) < n:
            human.setdefault(g["asin"], []).append({
                "instruction": g["instruction_text"].split(", and price")[0],
                "instruction_attributes": g["attributes"], "instruction_options": g["goal_options"]})
    (out / "items_ins_v2.json").write_text(json.dumps(ins))
    (out / "items_human_ins.json").write_text(json.dumps(human))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=100_000)
    ap.add_argument("--write", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.write:
        write_original_format(args.products, Path(args.write))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "data").mkdir()
        # written by a child process, so the peak RSS below is the loader's alone
        subprocess.run([sys.executable, __file__, "--products", str(args.products), "--write",
                        str(tmp / "data")],
                       check=True)
        size = (tmp / "data" / "items_shuffle.json").stat().st_size
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        from leap_gym.envs.webshop.data import FileCatalog
        from leap_gym.envs.webshop.search import SearchIndex

        t0 = time.perf_counter()
        cat = FileCatalog(tmp / "data", cache_dir=tmp / "cache")
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        SearchIndex.build(cat.index_texts())
        index_s = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"products": len(cat), "file_mb": round(size / 2**20, 1),
                          "goals": len(cat.goals("all")), "store_build_s": round(load_s, 2),
                          "index_build_s": round(index_s, 2),
                          "rss_before_load_mb": round(base, 1), "peak_rss_mb": round(peak, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
