# SPDX-License-Identifier: MIT
"""The version is written once (rust/Cargo.toml); everything that reports it agrees."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import wsfast
from wsfast._native import rust

ROOT = Path(__file__).resolve().parents[2]


def test_distribution_metadata_carries_the_crate_version() -> None:
    assert version("wsfast") == rust.__version__


def test_package_reports_the_crate_version() -> None:
    assert wsfast.__version__ == rust.__version__


def test_changelog_has_a_section_for_the_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{wsfast.__version__}]" in text
