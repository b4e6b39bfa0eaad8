"""Config: defaults, YAML, dotted overrides, validation with the key named, saved and re-read unchanged."""

from __future__ import annotations

import pytest

from leap_gym.leap.config import ConfigError, LeapConfig, dump_config, load_config, save_config, to_dict


def test_defaults_are_valid():
    cfg = load_config()
    assert cfg == LeapConfig()
    assert cfg.training.method == "sft" and cfg.teacher.privilege == 0.5


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("iterations: 3\ntraining:\n  max_steps: 40\n  method: dpo\nenv:\n  kwargs: "
                    "{tasks: files}\n")
    cfg = load_config(path,
                      ["training.max_steps=7", "teacher.privilege=0.25",
                       "env.test_kwargs={split: valid_seen}", "evaluation.baselines=[a:B]"])
    assert cfg.iterations == 3 and cfg.training.method == "dpo"
    assert cfg.training.max_steps == 7 and cfg.teacher.privilege == 0.25
    assert cfg.env.kwargs == {"tasks": "files"} and cfg.env.test_kwargs == {"split": "valid_seen"}
    assert cfg.env.train_kwargs == {"split": "train"}  # untouched default
    assert cfg.evaluation.baselines == ["a:B"]


def test_int_given_for_float_is_accepted_and_coerced():
    assert load_config(None, ["training.learning_rate=1"]).training.learning_rate == 1.0


def test_exponent_without_dot_is_a_number():
    """YAML 1.1 reads ``1e-3`` as a string; a float field still takes it (and rejects real words)."""
    assert load_config(None, ["training.learning_rate=1e-3"]).training.learning_rate == 1e-3
    with pytest.raises(ConfigError, match="training.learning_rate"):
        load_config(None, ["training.learning_rate=fast"])


@pytest.mark.parametrize("override, message", [
    ("training.max_stepz=3", "training.max_stepz"),
    ("training.max_steps=many", "training.max_steps"),
    ("training.method=ppo", "training.method"),
    ("teacher.privilege=1.5", "teacher.privilege"),
    ("rollout.tasks_per_iteration=-1", "rollout.tasks_per_iteration"),
    ("rollout.max_corrected_steps=-2", "rollout.max_corrected_steps"),
    ("student.snap_to_admissible=maybe", "student.snap_to_admissible"),
    ("nonsense", "expected key.sub=value"),
    ("my_run.yaml", "a config file goes after --config"),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(None, [override])


def test_bad_yaml_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="top level"):
        load_config(path)


def test_save_and_reload_round_trip(tmp_path):
    cfg = load_config(None,
                      ["iterations=4", "training.aggregate=all", "env.kwargs={tasks: files, data_dir: /x}"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == cfg and to_dict(again) == to_dict(cfg)
    assert "aggregate: all" in dump_config(cfg)


def test_embedded_demo_config_is_valid_and_matches_the_issue():
    from leap_gym.leap.presets import DEMO_CONFIG

    cfg = load_config(None, ["run_dir=/tmp/x"], base=DEMO_CONFIG)
    assert cfg.env.env_id == "leap/ALFWorld-v0" and cfg.student.model == "smollm2-135m"
    assert cfg.teacher.kind == "expert" and cfg.teacher.privilege == 0.5
    # the issue leaves the iterations to the measurement: one, on each failed episode's first correction
    assert cfg.iterations == 1 and cfg.rollout.max_corrected_steps == 1
    assert cfg.env.test_kwargs == {"split": "test"} and cfg.run_dir == "/tmp/x"


def test_cli_registers_train_eval_demo(capsys):
    import pytest as _pytest

    from leap_gym.cli import main

    for cmd in ("train", "eval", "demo"):
        with _pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        assert "overrides" in capsys.readouterr().out
