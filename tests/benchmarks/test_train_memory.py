"""The training-memory benchmark on a tiny built student and a run directory laid out as a run leaves it, so
the script cannot rot between the runs of the real measurement."""

import importlib.util
import json
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

TRAIN_MEMORY = Path(__file__).resolve().parents[2] / "benchmarks" / "train_memory.py"


@pytest.mark.slow  # trains a tiny student (~20 s)
def test_train_memory_replays_the_longest_rows_and_reports_the_peak(tmp_path, capsys):
    pytest.importorskip("trl")
    from leap_gym.leap.config import TrainingConfig
    from leap_gym.models import build_tiny_student
    from tests.leap.test_train import _rows

    model_dir = tmp_path / "tiny"
    _, tok = build_tiny_student("tiny", save_to=str(model_dir))
    run = tmp_path / "run"
    (run / "iter_0").mkdir(parents=True)
    rows = _rows(tok)
    (run / "iter_0" / "dataset.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    training = asdict(TrainingConfig(batch_size=1, grad_accum=2, warmup_steps=0))
    (run / "config.yaml").write_text(yaml.safe_dump({"student": {"model": str(model_dir), "num_threads": 1},
                                                     "training": training}))
    spec = importlib.util.spec_from_file_location("leap_train_memory_benchmark", TRAIN_MEMORY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--run-dir", str(run), "--rows", "3", "--steps", "2", "--label", "default"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    longest = max(int(r["meta"]["tokens"]) for r in rows)
    assert result["label"] == "default" and result["rows"] == 3 and result["longest_tokens"] == longest
    assert result["steps"] == 2 and result["wall_s"] > 0
    assert len(result["peak_fifths_mib"]) == 5 and result["peak_mib"] == max(result["peak_fifths_mib"]) > 0
