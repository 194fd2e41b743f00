"""The soak as a test (slow: ``pytest -m slow tests/security/test_soak.py``): 10,000 executions,
8 at once, mixing normal programs, failing programs and attacks (``bench/soak.py``, which also
prints the figures). ``CODEMODE_SOAK_EXECUTIONS`` sets another count."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


def load_soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("codemode_bench_soak", SOAK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.timeout(3600)
async def test_soak_leaves_no_wrong_result_and_nothing_behind() -> None:
    soak = load_soak()
    executions = int(os.environ.get("CODEMODE_SOAK_EXECUTIONS", "10000"))
    report = await soak.soak(executions=executions, concurrency=8)
    soak.print_report(report)
    figures = report.figures()
    assert report.wrong[:5] == []
    assert (
        figures["leaked_processes"],
        figures["leaked_fds"],
        figures["leaked_temp_files"],
    ) == (0, 0, 0)
    assert figures["host_rss_growth_pct"] < 10
