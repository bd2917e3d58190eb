"""The joblib launcher: a sweep's jobs run at once and share the machine's cores."""

import os
import re
from datetime import datetime
from pathlib import Path

import pytest
from conftest import read_results


def log_times(log: Path) -> tuple[datetime, datetime]:
    stamps = re.findall(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)\]", log.read_text(), re.M)
    times = [datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f") for s in stamps]
    return times[0], times[-1]


@pytest.mark.ci
def test_joblib_jobs_run_at_once_and_share_the_cores(seed_sweep: Path) -> None:
    cores = os.cpu_count() or 1
    threads = max(1, cores // min(2, cores))
    logs = [seed_sweep / str(i) / "train.log" for i in (0, 1)]
    for log in logs:
        assert f"torch threads: {threads} ({min(2, cores)} jobs at once on {cores} cores)" in (
            log.read_text()
        )
    (start0, end0), (start1, end1) = (log_times(log) for log in logs)
    assert start0 < end1 and start1 < end0  # the two jobs overlapped in time
    results = [read_results(seed_sweep / str(i)) for i in (0, 1)]
    assert all(r["status"] == "ok" and r["metrics"]["test/acc"] > 0.2 for r in results)
