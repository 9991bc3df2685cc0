"""The load benchmark in a reduced size: every delivery answered, no job lost or doubled (no timings)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_webhooks.py"


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_webhooks", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("store", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def test_burst_of_deliveries_loses_and_doubles_nothing(store: str, request: pytest.FixtureRequest) -> None:
    if store == "redis":
        request.getfixturevalue("redis_url")  # fails clearly when no Redis answers
    result = bench().run(store, 300, concurrency=32)
    assert result["deliveries"] == 300 and result["distinct_keys"] == 240
    assert result["answered_2xx"] == 300, result["statuses"]
    assert result["created"] == 240 and result["keys_with_several_job_ids"] == 0
    assert result["keys_with_one_job_id"] == 240
    assert result["jobs_in_store"] == 240 and result["lost"] == 0 and result["doubled"] == 0
