"""Training throughput and peak memory of the tiny students (LoRA + fully trained embeddings/head, as the LEAP
loop trains a from-scratch base), fp32 and bf16 autocast, on this machine's CPU (or CUDA when present).

Each configuration runs in its own process so its peak RSS is its own. Throughput counts tokens of the
synthetic batch (batch x seq_len) per optimizer step; CPU time is reported too because wall time wanders on a
shared machine.

    python benchmarks/train_speed.py [--quick] [--sizes tiny small base] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import common


def _one(size: str, dtype: str, steps: int, batch: int, seq_len: int, threads: int) -> dict:
    import torch
    from peft import get_peft_model

    from leap_gym.models import build_tiny_student, lora_config_for

    torch.set_num_threads(threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tok = build_tiny_student(size=size)
    model = get_peft_model(model, lora_config_for(model)).to(device)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(10, len(tok), (batch, seq_len), generator=gen).to(device)
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=dtype == "bf16")
    times, cpu = [], []
    for i in range(steps + 2):  # two warm-up steps
        t0, c0 = time.perf_counter(), time.process_time()
        with autocast:
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= 2:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    tokens = batch * seq_len
    times.sort()
    return {"size": size, "dtype": dtype, "params M": total / 1e6, "trainable M": trainable / 1e6,
            "tok/s (median wall)": tokens / times[len(times) // 2], "tok/s (best wall)": tokens / times[0],
            "tok/CPU-s": tokens * len(cpu) / sum(cpu), "peak RSS MiB": common.peak_rss_mb(), "device": device}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", nargs="*", default=["tiny", "small", "base"])
    parser.add_argument("--dtypes", nargs="*", default=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    steps = 3 if args.quick else 10
    if args._child:
        size, dtype = args._child.split(",")
        print(json.dumps(_one(size, dtype, steps, args.batch, args.seq_len, args.threads)))
        return {}
    rows = []
    for size in args.sizes:
        for dtype in args.dtypes:
            cmd = [sys.executable, __file__, "--_child", f"{size},{dtype}", "--threads", str(args.threads),
                   "--batch", str(args.batch), "--seq-len",
                   str(args.seq_len)] + (["--quick"] if args.quick else [])
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    md = common.markdown_table(rows, list(rows[0]))
    command = "python benchmarks/train_speed.py" + (" --quick" if args.quick else "")
    common.save("train",
                {"rows": rows, "batch": args.batch, "seq_len": args.seq_len, "threads": args.threads}, md,
                command)
    print(md)
    return {"rows": rows}


if __name__ == "__main__":
    main()
