"""The manifest: what the action owns in an output folder, and nothing more."""

from __future__ import annotations

import json

import pytest

from export_action.errors import OutputFolderNotOwnedError
from export_action.manifest import MANIFEST_NAME, Entry, Manifest, check_owned

MANIFEST = Manifest({"model.onnx": Entry("a" * 64, 10, lfs=False), "model.pt": Entry("b" * 64, 20, lfs=True)})


def test_round_trip_and_owned_names() -> None:
    assert Manifest.from_json(MANIFEST.to_json()) == MANIFEST
    assert MANIFEST.owned() == {"model.onnx", "model.pt", MANIFEST_NAME}


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        json.dumps({"generator": "someone else", "version": 1, "files": {}}),
        json.dumps({"generator": "hub-exporter GitHub Action", "files": {"x": {"sha256": "a"}}}),
        json.dumps({"generator": "hub-exporter GitHub Action", "files": {"../README.md": vars(Entry("a", 1, False))}}),
        json.dumps({"generator": "hub-exporter GitHub Action", "files": {"/etc/x": vars(Entry("a", 1, False))}}),
    ],
)
def test_anything_else_is_not_a_manifest(text: str) -> None:
    assert Manifest.from_json(text) is None


def test_a_folder_of_listed_files_is_owned() -> None:
    check_owned("here", "exports/x", ["model.onnx", "model.pt", MANIFEST_NAME], MANIFEST, local=False)
    check_owned("here", "exports/x", ["model.onnx", "report.json"], MANIFEST, local=True)  # left by the exporter
    check_owned("here", "exports/x", [], None, local=False)


def test_a_folder_with_other_files_is_refused_naming_them() -> None:
    with pytest.raises(OutputFolderNotOwnedError) as caught:
        check_owned(
            "at abc1234",
            "models/tiny-bert",
            ["config.json", "model.safetensors", "tokenizer.json", "vocab.txt"],
            None,
            local=False,
        )
    message = str(caught.value)
    assert message.startswith("output folder models/tiny-bert (at abc1234) holds files the action did not write")
    assert "(config.json, model.safetensors, tokenizer.json and 1 more)" in message
    assert "nothing was pushed" in message and caught.value.exit_code == 12 and "\n" not in message
    with pytest.raises(OutputFolderNotOwnedError, match=r"\(report.json\)"):
        check_owned("here", "exports/x", ["report.json"], MANIFEST, local=False)  # only locally
