"""Every file name an export can write, and where a pull request puts it: one list for all three tools.

The exporter writes, per *component* (``model``, or ``encoder_model`` / ``decoder_model_merged`` …):

* ONNX: ``<component>.onnx``, its weights ``<component>.onnx_data`` when large; the dtype variants
  ``<component>_fp16.onnx``, ``<component>_quantized.onnx`` (q8), ``<component>_q4.onnx`` and their
  ``…onnx_data`` (:mod:`exporter.variants`);
* TorchScript: ``<component>.pt``;
* ``report.json`` and ``report.md``.

The bot and the Action take from ``report.json``'s ``files`` only names listed here, and put them
where the clients look them up: ONNX files and the report under ``onnx/``, TorchScript under
``torchscript/`` (:func:`repo_folder`).
"""

from __future__ import annotations

#: Graphs an export can hold, by file stem.
COMPONENTS = ("model", "encoder_model", "decoder_model", "decoder_with_past_model", "decoder_model_merged")
#: What a dtype variant adds to a component's stem (``model`` → ``model_quantized``), fp32 first.
DTYPE_SUFFIXES = {"fp32": "", "fp16": "_fp16", "q8": "_quantized", "q4": "_q4"}
#: Suffix of each format's files (the first is the graph itself).
FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "onnx": tuple(f"{dtype}{ext}" for dtype in DTYPE_SUFFIXES.values() for ext in (".onnx", ".onnx_data")),
    "torchscript": (".pt",),
}
#: Folder of each format in a repository laid out for the clients.
FORMAT_FOLDERS = {"onnx": "onnx", "torchscript": "torchscript"}
REPORT_FILES = ("report.json", "report.md")


def export_file_names() -> dict[str, str]:
    """Every exported model file name → its format (``"model.onnx": "onnx"`` …)."""
    return {
        f"{component}{suffix}": fmt
        for fmt, suffixes in FORMAT_SUFFIXES.items()
        for component in COMPONENTS
        for suffix in suffixes
    }


def format_of(name: str) -> str | None:
    """The format a file name belongs to, ``None`` when the exporter never writes that name."""
    return export_file_names().get(name)


def repo_folder(name: str) -> str:
    """Where a pull request puts an exported file: ``onnx`` or ``torchscript``."""
    fmt = format_of(name)
    if fmt is None:
        raise ValueError(f"{name!r} is not a file the exporter writes")
    return FORMAT_FOLDERS[fmt]


def is_graph(name: str) -> bool:
    """A file a runtime loads (``model.onnx``, ``model.pt``), not the weights next to it."""
    fmt = format_of(name)
    return fmt is not None and name.endswith(FORMAT_SUFFIXES[fmt][0])
