"""Every benchmark runs at a tiny size, so none can rot between full runs."""

import pytest

from tests.benchmarks.__main__ import available, run


def test_there_are_benchmarks():
    assert available(), "tests/benchmarks has no bench_*.py module"


@pytest.mark.parametrize("name", available())
def test_benchmark_runs_at_tiny_size(name, capsys):
    results = run([name], "tiny")
    assert results, f"benchmark {name} reported no figure"
    out = capsys.readouterr().out
    for result in results:
        assert f"{result['name']}: " in out
        assert result["value"] >= 0
