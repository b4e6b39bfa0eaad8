"""Named configs, as overrides of the defaults: the demo's (``leap-gym demo``), which the learning benchmark
and the example notebook start from too (``examples/configs/alfworld_demo.yaml`` holds the same settings)."""

from __future__ import annotations

from typing import Any

# The embedded demo: generated ALFWorld tasks, the pretrained SmolLM2-135M-Instruct student in the episode
# prompt format (bf16, LoRA on all its layers: BC reached 0.25 held-out success that way against 0.05 with the
# top 10 layers), the privilege-0.5 expert teacher, BC + 1 LEAP iteration that trains on each failed episode's
# steps up to its first correction (on the demo's 40 held-out tasks iteration 1 was above BC on 5 of 5 seeds,
# +0.055 on average, but on 40 further held-out tasks -0.015: +0.020 over all 80; with up to the third
# correction +0.033 on 3 seeds, one of them below BC). About 30 minutes on a 2-core CPU (BENCHMARKS.md, "The
# demo on the pretrained student"), less on a GPU.
DEMO_CONFIG: dict[str, Any] = {
    "run_dir": "runs/demo",
    "seed": 0,
    "iterations": 1,
    "env": {"env_id": "leap/ALFWorld-v0", "num_train_tasks": 100, "max_steps": 20},
    "student": {"model": "smollm2-135m", "batch_size": 40, "max_new_tokens": 48, "snap_to_admissible": True},
    "teacher": {"privilege": 0.5, "demo_privilege": 0.5},
    "rollout": {"tasks_per_iteration": 40, "max_corrected_steps": 1},
    "training": {"max_length": 2048, "bc_max_steps": 50, "max_steps": 30, "batch_size": 1, "grad_accum": 4,
                 "bc_learning_rate": 5e-4, "learning_rate": 2e-4, "lora_layers": 0, "bf16": True,
                 "warmup_steps": 3},
    "evaluation": {"num_test_tasks": 40},
}
