"""Sizes in report.md (the Action's job summary and pull request body) are binary units, labelled so."""

from __future__ import annotations

import pytest

from exporter.report import _human_bytes


@pytest.mark.parametrize(
    ("size", "text"),
    [(500, "500 B"), (2048, "2.0 KiB"), (3 << 20, "3.0 MiB"), (440_000_000, "419.6 MiB"), (5 << 40, "5120.0 GiB")],
)
def test_sizes_are_labelled_in_binary_units(size: int, text: str) -> None:
    assert _human_bytes(size) == text
