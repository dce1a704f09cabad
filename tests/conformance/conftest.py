# SPDX-License-Identifier: MIT
"""Per-category pass counts of the conformance runs, printed after the test summary."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from tests.conformance.cases import BY_ID, CATEGORIES

_ID = re.compile(r"::test_(server|client)\[([\d.]+)\]$")
# (side, category) -> outcome -> count
_COUNTS: defaultdict[tuple[str, str], defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count each conformance case once, by its final outcome."""
    found = _ID.search(report.nodeid)
    if not found or found.group(2) not in BY_ID:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        side, case_id = found.groups()
        outcome = "xfailed" if hasattr(report, "wasxfail") else report.outcome
        _COUNTS[side, BY_ID[case_id].category][outcome] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print ``side  category  passed/total`` for every category that ran."""
    if not _COUNTS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("conformance pass counts")
    for side in ("server", "client"):
        total = passed = 0
        for category, name in CATEGORIES.items():
            counts = _COUNTS.get((side, category))
            if not counts:
                continue
            n = sum(counts.values())
            total += n
            passed += counts["passed"]
            others = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "passed")
            write(f"{side:6} {category:>2} {name:36} {counts['passed']:4}/{n:<4} {others}")
        if total:
            write(f"{side:6}    {'all categories':36} {passed:4}/{total:<4}")
