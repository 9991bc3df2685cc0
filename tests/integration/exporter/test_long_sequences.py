"""LongT5 pads its sequence to whole attention blocks: one exported graph must serve lengths that differ
in block count, for both of its encoder attention types (``local`` and ``transient-global``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter import dummy_inputs as axes
from exporter.run import ExportRequest, run_export
from exporter.sample import build_sample_checkpoint

#: 16, 11 and 37 tokens: 4, 3 and 8 blocks of LongT5's tiny 5-token block (local_radius 4).
SHAPES = (
    *axes.VALIDATION_SHAPES,
    {axes.BATCH: 1, axes.SEQUENCE: 37, axes.DECODER_SEQUENCE: 2, axes.PAST_SEQUENCE: 9},
)


@pytest.mark.slow
@pytest.mark.exhaustive
@pytest.mark.parametrize("attention", ["local", "transient-global"])
def test_longt5_with_past_validates_across_block_counts(attention: str, tmp_path: Path) -> None:
    checkpoint = build_sample_checkpoint(
        tmp_path / "checkpoint", "longt5", "seq2seq-lm", encoder_attention_type=attention
    )
    request = ExportRequest(
        model=str(checkpoint), task="seq2seq-lm-with-past", output_dir=tmp_path / "out", validation_shapes=SHAPES
    )
    report = run_export(request)
    assert report.status == "passed", report.failures()
    lengths = {check.shape.get("encoder_sequence_length") for result in report.formats for check in result.checks}
    assert lengths == {16, 11, 37}
    assert all(result.method in ("torchscript", "trace") for result in report.formats)
