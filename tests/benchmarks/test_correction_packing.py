"""The correction-packing benchmark at a size that runs in seconds: real random-agent episodes, real expert
corrections, both layouts trained through ``leap_gym.leap.train.train`` on a tiny built model."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "correction_packing.py"


def test_both_layouts_train_the_same_answers_and_packing_reads_fewer_tokens(monkeypatch, tmp_path):
    pytest.importorskip("trl")
    from leap_gym.models import build_model, build_tokenizer, env_text_corpus

    tok = build_tokenizer(env_text_corpus(n_samples=60), vocab_size=1024)
    model = tmp_path / "tiny"
    build_model(tok, "tiny").save_pretrained(model)
    tok.save_pretrained(model)
    monkeypatch.syspath_prepend(str(BENCH.parent))
    spec = importlib.util.spec_from_file_location("leap_correction_packing", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "packing.json"
    assert bench.main(["--model", str(model), "--episodes", "2", "--max-steps", "6", "--warmup", "0",
                       "--steps", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())["training"]
    per_step, packed = result["per_step"], result["packed"]
    assert per_step["answers"] == packed["answers"] == per_step["rows"] > packed["rows"] >= 1
    assert packed["dataset_tokens"] < per_step["dataset_tokens"] / 2
    assert packed["timed_steps"] == per_step["timed_steps"] == 1 and packed["answers_per_s"] > 0
    assert "| answers/s |" in out.with_suffix(".md").read_text()
