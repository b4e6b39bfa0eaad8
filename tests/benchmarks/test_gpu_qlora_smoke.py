"""The GPU benchmark (issue #10) must run first time on a lent GPU: its whole path (random checkpoint saved
and reloaded, LEAP-style rows, ``train`` with the step timer, ``HFStudent.act_batch``, JSON + table) runs here
on CPU at a tiny size, and its FLOP count is checked against the layers of a real model."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_qlora.py"


def _cpu_env() -> dict[str, str]:
    """This worktree first on the path (before any outer PYTHONPATH, e.g. another transformers), one thread,
    no GPU even where there is one."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


def _module():
    spec = importlib.util.spec_from_file_location("leap_gpu_qlora_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_run_writes_every_field(tmp_path):
    out = tmp_path / "r.json"
    env = _cpu_env()
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--threads", "1", "--out", str(out),
                           "--model-dir", str(tmp_path / "model"), "--work-dir", str(tmp_path / "work")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["shape"] == "smoke" and result["device"] == "cpu" and result["versions"]["torch"] != "-"
    (run,) = result["train"]
    assert run["mode"] == "bf16-lora" and run["quantized"] is False and run["timed_steps"] == 2
    assert run["train_tok_s"] > 0 and run["step_s_median"] > 0 and run["lora_params_m"] > 0
    assert 0 < run["mfu"] < 1 and run["flops_per_token_g"] > 0
    assert [a["envs"] for a in result["act"]] == [1, 2]
    assert all(a["generated_tokens"] > 0 and a["gen_tok_s"] > 0 and a["actions_s"] > 0 for a in result["act"])
    assert "| bf16-lora |" in proc.stdout and "generated tok/s" in proc.stdout
    assert not (tmp_path / "model").exists() and not (tmp_path / "work").exists()  # 16 GB on the GPU machine


def test_flop_count_matches_the_model_layers():
    import torch

    from leap_gym.models import build_tokenizer

    gq = _module()
    tok = build_tokenizer()
    config = gq.shape_config("smoke", tok, layers=3)
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM(config)
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert gq.matmul_params(config) == linear
    s, L, d = 100, 3, config.hidden_size
    assert gq.flops_per_token(config, 10, s) == 4 * linear + 60 + 6 * L * s * d
    full_8b = gq.shape_config("llama3-8b", tok)
    assert 7.4e9 < gq.matmul_params(full_8b) < 7.6e9  # 8.03B less the 0.53B embedding table (lm_head counts)


def test_smollm2_shape_is_the_published_model():
    """SmolLM2-135M-Instruct's config: 134.5M parameters with the head tied to the embedding table, whose
    matrix product still counts (134.5M matmul weights = 30 layers + a 576 x 49152 head)."""
    import torch
    from transformers import LlamaForCausalLM

    from leap_gym.models import build_tokenizer

    gq = _module()
    config = gq.shape_config("smollm2-135m", build_tokenizer())
    assert config.tie_word_embeddings and config.vocab_size == 49152 and config.head_dim == 64
    assert config.rope_parameters["rope_theta"] == 100000.0
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert 134.4e6 < sum(p.numel() for p in model.parameters()) < 134.6e6
    assert 134.4e6 < gq.matmul_params(config) < 134.6e6
    assert gq.SEQ_LENS["smollm2-135m"] == [512, 1024, 2048]


def test_rows_fit_the_requested_length():
    from leap_gym.models import build_tokenizer

    gq = _module()
    rows = gq.leap_rows(build_tokenizer(), 3, 2048)
    assert all(2048 * 0.97 <= r["meta"]["tokens"] <= 2048 for r in rows)
    assert all(r["prompt"][0]["role"] == "system" and r["completion"][0]["role"] == "assistant" for r in rows)


CONFIG = ROOT / "benchmarks" / "configs" / "gpu_iteration.yaml"


def test_gpu_iteration_config_loads():
    from leap_gym.leap.config import load_config

    cfg = load_config(CONFIG)
    assert cfg.env.env_id == "leap/WebShop-v0" and cfg.iterations == 1
    assert cfg.training.quantize == "auto" and cfg.training.continue_mode == "merge"
    assert cfg.student.model == "/tmp/leap_gpu_base"  # what the documented --build-only command writes


@pytest.mark.slow
def test_gpu_iteration_runs_end_to_end_at_cpu_size(tmp_path):
    """The GPU command sequence at a tiny size: build a checkpoint from config, run the config on it."""
    env = _cpu_env()
    base, run_dir = tmp_path / "base", tmp_path / "run"
    subprocess.run([sys.executable, str(SCRIPT), "--build-only", "--shape", "smoke", "--model-dir", str(base),
                    "--threads", "1"], check=True, capture_output=True, env=env, timeout=300)
    proc = subprocess.run([sys.executable, "-m", "leap_gym.cli", "train", "--config", str(CONFIG), "--quiet",
                           f"student.model={base}", f"run_dir={run_dir}", "env.num_train_tasks=3",
                           "evaluation.num_test_tasks=3", "training.bc_max_steps=1", "training.max_steps=1",
                           "student.batch_size=3", "student.num_threads=1", "training.max_length=1024"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run_dir / "iter_1" / "train" / "model" / "config.json").exists()
    assert "LEAP iter 1" in proc.stdout
