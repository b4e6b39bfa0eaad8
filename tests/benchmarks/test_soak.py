"""The soak benchmark at a size that runs in seconds: real vector envs, a real /proc walk, the JSON it
keeps."""

import importlib.util
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


@pytest.fixture
def soak(monkeypatch):
    monkeypatch.syspath_prepend(str(SOAK.parent))  # the benchmark imports its sibling ``common``
    spec = importlib.util.spec_from_file_location("leap_soak_benchmark", SOAK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_soak_samples_a_vector_env_and_writes_its_findings(soak, tmp_path):
    rc = soak.main(["--envs", "leap/ALFWorld-v0", "--num-envs", "2", "--seconds", "3",
                    "--sample-every", "0.5", "--pool", "2", "--max-rss-growth-mb", "1000",
                    "--results-dir", str(tmp_path)])
    result = json.loads((tmp_path / "soak.json").read_text())
    assert rc == 0 and result["flat"] and result["failures"] == {}
    assert result["settings"]["seconds_per_env"] == 3
    assert result["command"].startswith("python benchmarks/soak.py")
    (row,) = result["rows"]
    assert row["env"] == "leap/ALFWorld-v0" and row["mode"] == "async" and row["flat"]
    assert row["env_kwargs"] == {"num_tasks": 2}
    assert row["steps"] > 0 and row["steps"] % 2 == 0 and row["seconds"] >= 3
    times = [s["t"] for s in row["samples"]]
    assert len(times) >= 4 and times == sorted(times)
    for metric in ("rss_mb", "fds", "threads", "children", "zombies"):
        assert set(row[metric]) == {"start", "end", "max", "growth_2nd_half"}
        assert row[metric]["max"] >= max(row[metric]["start"], row[metric]["end"])
    assert row["children"]["start"] >= 2  # the two async workers are in the tree, with their memory
    assert row["rss_mb"]["start"] > row["samples"][0]["own_rss_mb"] > 0
    assert isinstance(row["rss_slope_2nd_half_mb_per_min"], float)
    assert row["after_close"]["children"] <= row["before"]["children"]
    assert "| leap/ALFWorld-v0 |" in (tmp_path / "soak.md").read_text()


def test_process_tree_sample_counts_a_child_its_descriptors_and_a_zombie(soak):
    before = soak.sample_tree()
    child = subprocess.Popen(["sleep", "60"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        running = soak.sample_tree()
        assert running["children"] == before["children"] + 1 and running["zombies"] == before["zombies"]
        assert running["fds"] >= before["fds"] + 2 + 3  # our two pipe ends, the child's stdin/stdout/stderr
        assert running["rss_mb"] > before["rss_mb"] and running["threads"] == before["threads"] + 1
        child.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 10  # killed, not yet waited for: a zombie (slow when loaded)
        while True:
            dead = soak.sample_tree()
            if dead["zombies"] == before["zombies"] + 1 or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert dead["children"] == before["children"] and dead["zombies"] == before["zombies"] + 1
    finally:
        child.kill()
        child.wait()
        child.stdin.close()
        child.stdout.close()
    assert soak.sample_tree()["zombies"] == before["zombies"]


def test_checks_name_each_growth_and_what_close_left(soak):
    flat = {m: {"growth_2nd_half": 0} for m in soak.METRICS}
    clean = {"children": 0, "zombies": 0}
    assert soak.checks({**flat, "before": clean, "after_close": clean}, 4, 1, 32.0) == []
    grown = {"fds": {"growth_2nd_half": 5}, "threads": {"growth_2nd_half": 9},
             "children": {"growth_2nd_half": 0}, "zombies": {"growth_2nd_half": 2},
             "rss_mb": {"growth_2nd_half": 40.0}}
    failed = soak.checks({**grown, "before": clean, "after_close": {"children": 1, "zombies": 0}}, 4, 1, 32.0)
    assert [f.split()[0] for f in failed] == ["descriptors", "children", "RSS", "close()"]
