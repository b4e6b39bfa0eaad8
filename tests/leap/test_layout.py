"""The run directory's layout: names, stage kinds, the weights an iteration acts with, and the per-iteration
training policy."""

from __future__ import annotations

import json

from leap_gym.leap.config import TrainingConfig
from leap_gym.leap.layout import RunLayout, iteration_key, key_iteration


def test_iteration_keys_round_trip_and_other_keys_name_no_iteration():
    assert iteration_key(3) == "iter_3" and key_iteration("iter_3") == 3
    assert key_iteration("teacher_no_privilege") is None and key_iteration("iter_x") is None


def test_stage_names_are_output_paths_and_sort_into_iterations(tmp_path):
    layout = RunLayout(tmp_path)
    assert layout.stage_name(layout.demos) == "iter_0/demos"
    assert layout.stage_name(layout.train(2).path) == "iter_2/train"
    assert layout.stage_name(layout.evaluation(1)) == "iter_1/eval"
    assert layout.stage_name(layout.base) == "base"
    assert [RunLayout.stage_kind(n) for n in ("iter_2/train", "base", "teachers/teacher_privileged")] == [
        (2, "train"), (0, "base"), (None, "teachers")]


def test_student_weights_merged_or_stacked(tmp_path):
    layout = RunLayout(tmp_path)
    merged = layout.train(0)
    merged.model.mkdir(parents=True)
    (merged.model / "config.json").write_text("{}")
    assert layout.student_weights(0) == (str(merged.model), None)
    stacked = layout.train(1)
    stacked.adapter.mkdir(parents=True)
    (stacked.adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/hub/base"}))
    assert layout.student_weights(1) == ("/hub/base", str(stacked.adapter))  # the adapter's recorded base
    assert layout.student_weights(1, base="/given") == ("/given", str(stacked.adapter))
    layout.base.mkdir()
    (layout.base / "config.json").write_text("{}")
    assert layout.student_weights(1) == (str(layout.base), str(stacked.adapter))  # the base built here


def test_behaviour_cloning_is_sft_with_its_own_steps_then_the_method():
    t = TrainingConfig(method="dpo", max_steps=7, bc_max_steps=11, learning_rate=1e-3, bc_learning_rate=5e-3)
    bc, leap = t.for_iteration(0), t.for_iteration(1)
    assert (bc.method, bc.max_steps, bc.settings.learning_rate) == ("sft", 11, 5e-3)
    assert (leap.method, leap.max_steps, leap.settings) == ("dpo", 7, t)
