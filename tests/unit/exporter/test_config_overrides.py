"""A spec's config overrides that change the checkpoint's config are recorded and shown in the report."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoConfig

from exporter.run import configure
from exporter.specs import ModelSpec
from tests.support.reports import write_report


def test_configure_returns_only_the_values_it_changed() -> None:
    config = AutoConfig.for_model("bert", hidden_dropout_prob=0.1, num_labels=2)
    spec = ModelSpec(
        model_type="bert", config_overrides={"sequence-classification": {"hidden_dropout_prob": 0.0, "num_labels": 2}}
    )
    changed = configure(config, spec, "sequence-classification")
    assert changed == {"hidden_dropout_prob": {"checkpoint": 0.1, "exported": 0.0}}
    assert config.hidden_dropout_prob == 0.0
    assert configure(AutoConfig.for_model("bert"), spec, "masked-lm") == {}  # no override for that task


def test_the_report_lists_the_overrides(tmp_path: Path) -> None:
    from exporter.report import Report

    report = write_report(tmp_path)
    changed = report.model_copy(update={"config_overrides": {"is_decoder": {"checkpoint": False, "exported": True}}})
    assert Report.from_json(changed.to_json()).config_overrides == changed.config_overrides
    assert "`is_decoder` False → True" in changed.to_markdown()
    assert "Config changed" not in report.to_markdown()
