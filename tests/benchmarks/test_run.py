"""The benchmark runner goes on past a suite that stops: the compare suite without an ALFWorld data directory
exits through argparse, and the runner reports it and still returns a failure."""

import importlib.util
from pathlib import Path

RUN = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"


def test_a_suite_that_exits_is_reported_and_the_run_goes_on(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(RUN.parent))
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    spec = importlib.util.spec_from_file_location("leap_bench_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--suites", "compare", "compare"]) == 1
    err = capsys.readouterr().err
    assert err.count("suite compare stopped (exit 2)") == 2 and "failed suites: ['compare', 'compare']" in err
