"""The validation report: data first, then rendered as ``report.json`` and ``report.md``.

``report.json`` shape (``schema_version`` 1)::

    {
      "schema_version": 1,
      "status": "passed" | "failed",
      "model": "<path or repo id>", "revision": "<sha or null>",
      "model_type": "bert", "architecture": "BertForSequenceClassification", "task": "sequence-classification",
      "opset": 18, "export_shape": {"batch_size": 2, "sequence_length": 16},
      "shapes": [{"batch_size": 2, "sequence_length": 16}, {"batch_size": 3, "sequence_length": 11}],
      "formats": [
        {"format": "onnx", "component": "model", "file": "model.onnx", "passed": true, "note": "...",
         "method": "torchscript", "generalizes": true,
         "checks": [
           {"shape": {...}, "passed": true, "error": null,
            "outputs": [{"name": "logits", "shape": [2, 2], "reference_shape": [2, 2],
                         "max_abs_diff": 1e-7, "max_rel_diff": 3e-7, "atol": 1e-4, "rtol": 1e-5,
                         "passed": true}]}]}],
      "variants": [
        {"dtype": "q8", "component": "model", "file": "model_quantized.onnx", "criterion": "...",
         "figures": {"cosine": 0.9998, "top1_agreement": 1.0}, "passed": true, "error": null}],
      "files": [{"path": "model.onnx", "bytes": 123, "sha256": "..."}],
      "versions": {"exporter": ..., "torch": ..., "transformers": ..., "onnx": ..., "onnxruntime": ..., "opset": 18},
      "timings": {"load": {"seconds": 0.4, "peak_rss_mb": 512.0}, "onnx": {...}, ...},
      "graph_cache": null | {"key": "<sha256>", "reused_from": "<model>@<revision>" | null, "note": "..."}
    }

``formats`` has one entry per format and *component*, format by format. Most tasks have one
component, ``model``; a seq2seq ``-with-past`` export has three, ``encoder_model``,
``decoder_model`` and ``decoder_with_past_model``, each with its own checks; in ONNX the two
decoders are the two branches of one file, ``decoder_model_merged.onnx`` (``file``).
A shape names every dynamic axis the component has, as the graphs name them: ``batch_size`` and
``sequence_length``, plus ``decoder_sequence_length`` (decoder tokens) and ``past_sequence_length``
(tokens in the cache) where it has them (a seq2seq decoder's: ``encoder_sequence_length``,
``past_decoder_sequence_length``);
the top-level ``shapes`` are the union over the components. An output passes when every element is
within ``atol + rtol·|reference|``. ``variants`` (``--dtypes``; added in schema 1 with an empty
default) judges each fp16/q8/q4 file with its own criterion (:mod:`exporter.agreement`); a failing
one fails the report. (``component`` was added in schema 1
without a version bump: readers that ignore it see one entry per file, as before. ``graph_cache``, ``--cache-dir``'s
weights-only re-export (:mod:`exporter.graph_cache`), was added the same way, ``null`` by default.)
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from exporter.errors import ReportError

SCHEMA_VERSION = 1
Status = Literal["passed", "failed"]
#: Keys of ``report.json`` computed from the data (written for readers, checked when read back).
_DERIVED_FORMAT_KEYS = ("passed", "generalizes")


class _Data(BaseModel):
    """Frozen, and strict when read back: a report that does not fit the schema is refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class OutputCheck(_Data):
    """One output of one format on one input shape, compared with eager PyTorch."""

    name: str
    shape: list[int]
    reference_shape: list[int]
    max_abs_diff: float
    max_rel_diff: float
    atol: float
    #: Passed means ``|actual - reference| <= atol + rtol * |reference|`` for every element.
    rtol: float = 0.0
    passed: bool


class ShapeCheck(_Data):
    """All outputs of one format on one input shape."""

    shape: dict[str, int]
    outputs: list[OutputCheck]
    passed: bool
    error: str | None = None


class FormatResult(_Data):
    """Validation of one exported file (one format × component) across every tested shape."""

    format: str
    file: str
    checks: list[ShapeCheck]
    note: str = ""
    component: str = "model"
    #: How the file was made: ``torchscript`` / ``transformers`` for ONNX (see
    #: :mod:`exporter.formats.onnx`), ``trace`` for TorchScript; ``None`` in reports written before.
    method: str | None = None

    @property
    def label(self) -> str:
        """``onnx``, or ``onnx decoder_model`` when the export has several components."""
        return self.format if self.component == "model" else f"{self.format} {self.component}"

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.passed for check in self.checks)

    @property
    def generalizes(self) -> bool:
        """True when it also matches eager PyTorch on a shape other than the first (the export shape)."""
        return any(check.passed for check in self.checks[1:])


class VariantResult(_Data):
    """One dtype variant (``model_quantized.onnx`` …) judged against eager PyTorch with its own criterion."""

    dtype: str
    component: str
    file: str
    criterion: str
    #: The measured figures: ``top1_agreement``, ``cosine`` (q8/q4), ``max_abs_diff`` / ``max_rel_diff`` (fp16).
    figures: dict[str, float]
    passed: bool
    error: str | None = None

    def figures_text(self) -> str:
        return ", ".join(f"{key} {value:.4g}" for key, value in self.figures.items()) or "—"


class FileEntry(_Data):
    """One written file: its path relative to the output folder, size and sha256."""

    path: str
    bytes: int
    sha256: str

    @classmethod
    def of(cls, root: Path, path: Path) -> FileEntry:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return cls(path=path.relative_to(root).as_posix(), bytes=path.stat().st_size, sha256=digest.hexdigest())


class GraphCacheResult(_Data):
    """What the graph cache did (``--cache-dir``): reused a stored graph, stored this one, or why neither."""

    #: The cache key (sha256 of what shapes the graph); ``None`` when this export cannot use the cache.
    key: str | None
    #: ``<model>@<revision>`` of the export whose graph got this export's weights; ``None``: exported in full.
    reused_from: str | None = None
    note: str


class Report(_Data):
    """Everything a reviewer needs to trust (or reject) an export."""

    model: str
    revision: str | None
    model_type: str
    architecture: str
    task: str
    #: Config values the architecture's spec changed before building the model (the export is of the
    #: changed model, and validated against it): key → ``{"checkpoint": …, "exported": …}``.
    config_overrides: dict[str, dict[str, Any]] = {}
    opset: int | None
    export_shape: dict[str, int]
    shapes: list[dict[str, int]]
    formats: list[FormatResult] = []
    #: dtype variants beyond fp32 (``--dtypes``), each with the criterion it passed or failed.
    variants: list[VariantResult] = []
    files: list[FileEntry] = []
    versions: dict[str, Any] = {}
    timings: dict[str, dict[str, float]] = {}
    #: ``None`` when no cache was given (added in schema 1 with a null default).
    graph_cache: GraphCacheResult | None = None

    @property
    def status(self) -> Status:
        formats_pass = bool(self.formats) and all(f.passed for f in self.formats)
        return "passed" if formats_pass and all(v.passed for v in self.variants) else "failed"

    def failures(self, limit: int | None = None) -> list[str]:
        """One line per failing check, e.g. ``onnx batch=3,sequence=11 logits: max_abs_diff 0.2 > atol 1e-4``."""
        lines = []
        for fmt in self.formats:
            for check in fmt.checks:
                where = f"{fmt.label} {_shape_text(check.shape)}"
                if check.error:
                    lines.append(f"{where}: {check.error}")
                for out in check.outputs:
                    if out.passed:
                        continue
                    if out.shape != out.reference_shape:
                        lines.append(f"{where} {out.name}: shape {out.shape}, expected {out.reference_shape}")
                    else:
                        lines.append(f"{where} {out.name}: {_exceeded(out)}")
        for variant in self.variants:
            if not variant.passed:
                why = variant.error or f"{variant.figures_text()}; needs {variant.criterion}"
                lines.append(f"{variant.dtype} {variant.file}: {why}")
        if not self.formats:
            lines.append("no format was validated")
        return lines[:limit] if limit is not None else lines

    def failure_summary(self, limit: int = 3) -> str:
        """The first ``limit`` failures on one line, ``…`` when there are more."""
        failing = self.failures()
        return "; ".join(failing[:limit]) + (" …" if len(failing) > limit else "")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "status": self.status}
        data.update(self.model_dump(exclude={"formats"}))
        data["formats"] = [
            {"format": fmt.format, "component": fmt.component, **fmt.model_dump(exclude={"format", "component"})}
            | {"passed": fmt.passed, "generalizes": fmt.generalizes}
            for fmt in self.formats
        ]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=True) + "\n"

    def to_markdown(self) -> str:
        return render_markdown(self)

    def write(self, output_dir: Path) -> None:
        """Write ``report.json`` and ``report.md`` into ``output_dir``."""
        (output_dir / "report.json").write_text(self.to_json(), encoding="utf-8")
        (output_dir / "report.md").write_text(self.to_markdown(), encoding="utf-8")

    @classmethod
    def from_json(cls, raw: str | bytes) -> Report:
        """Parse ``report.json`` strictly: the schema version, every field and its type, and that the
        stored ``status`` / ``passed`` / ``generalizes`` agree with the checks. Raises :class:`ReportError`."""
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise ReportError(f"report.json is not JSON: {e}") from e
        if not isinstance(data, dict):
            raise ReportError("report.json is not a JSON object")
        if data.pop("schema_version", None) != SCHEMA_VERSION:
            raise ReportError(f"report.json is not schema version {SCHEMA_VERSION}")
        status = data.pop("status", None)
        stored = []
        for fmt in data.get("formats") or []:
            if isinstance(fmt, dict):
                stored.append({key: fmt.pop(key, None) for key in _DERIVED_FORMAT_KEYS})
        try:
            report = cls.model_validate(data)
        except ValidationError as e:
            error = e.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "(top)"
            raise ReportError(f"report.json does not fit the schema at {where}: {error['msg']}") from e
        if status != report.status or any(
            saved != {"passed": fmt.passed, "generalizes": fmt.generalizes}
            for saved, fmt in zip(stored, report.formats, strict=True)
        ):
            raise ReportError("report.json's status disagrees with its own checks")
        return report

    @classmethod
    def read(cls, output_dir: Path) -> Report:
        """``output_dir/report.json``, parsed with :meth:`from_json`."""
        try:
            raw = (output_dir / "report.json").read_bytes()
        except OSError as e:
            raise ReportError(f"cannot read report.json in {output_dir}: {e.strerror or e}") from e
        return cls.from_json(raw)


#: ``FormatResult.method`` in words.
METHOD_TEXT = {
    "torchscript": "torch.onnx, TorchScript-based",
    "transformers": "transformers' ONNX exporter (torch.export)",
    "trace": "torch.jit.trace",
}


def _exceeded(out: OutputCheck) -> str:
    """``max_abs_diff 0.2 > atol 1e-4``, with the ``rtol`` term when it is set."""
    if not out.rtol:
        return f"max_abs_diff {out.max_abs_diff:.3g} > atol {out.atol:g}"
    return (
        f"max_abs_diff {out.max_abs_diff:.3g} (max_rel_diff {out.max_rel_diff:.3g}) "
        f"> atol {out.atol:g} + rtol {out.rtol:g}·|reference|"
    )


def _shape_text(shape: dict[str, int]) -> str:
    return ",".join(f"{key}={value}" for key, value in shape.items())


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):  # powers of 1024, labelled as such
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def render_markdown(report: Report) -> str:
    """A compact report that reads well as a pull request description."""
    icon = "✅" if report.status == "passed" else "❌"
    lines = [
        f"### {icon} Export {report.status}: `{report.model_type}` · `{report.task}`",
        "",
        f"Model `{report.model}`"
        + (f" at `{report.revision}`" if report.revision else "")
        + f" ({report.architecture}), exported at {_shape_text(report.export_shape)}, "
        f"validated against eager PyTorch on {len(report.shapes)} shapes.",
        "",
        *(
            [
                "Config changed by the architecture's spec before export (the export and its reference "
                "are the changed model): "
                + ", ".join(
                    f"`{key}` {v['checkpoint']!r} → {v['exported']!r}" for key, v in report.config_overrides.items()
                ),
                "",
            ]
            if report.config_overrides
            else []
        ),
        "| format | shape | output | max abs diff | max rel diff | atol | rtol | result |",
        "|---|---|---|---:|---:|---:|---:|:---:|",
    ]
    for fmt in report.formats:
        for check in fmt.checks:
            if check.error:
                lines.append(f"| {fmt.label} | {_shape_text(check.shape)} | — | — | — | — | — | ❌ {check.error} |")
            for out in check.outputs:
                mark = "✅" if out.passed else "❌"
                lines.append(
                    f"| {fmt.label} | {_shape_text(check.shape)} | `{out.name}` | {out.max_abs_diff:.2e} "
                    f"| {out.max_rel_diff:.2e} | {out.atol:g} | {out.rtol:g} | {mark} |"
                )
    if report.variants:
        sizes = {f.path: f.bytes for f in report.files}
        lines += ["", "| dtype | file | size | criterion | measured | result |", "|---|---|---:|---|---|:---:|"]
        shared = Counter((variant.dtype, variant.file) for variant in report.variants)
        for variant in report.variants:
            size = sum(b for path, b in sizes.items() if path in (variant.file, f"{variant.file}_data"))
            mark = "✅" if variant.passed else f"❌ {variant.error}" if variant.error else "❌"
            # the merged decoder's file holds two components: name the one checked
            where = f" ({variant.component})" if shared[variant.dtype, variant.file] > 1 else ""
            lines.append(
                f"| {variant.dtype} | `{variant.file}`{where} | {_human_bytes(size)} | {variant.criterion} "
                f"| {variant.figures_text()} | {mark} |"
            )
    notes = [
        f"- **{fmt.label}**: {fmt.note}"
        + (f" (made by: {METHOD_TEXT.get(fmt.method, fmt.method)})" if fmt.method else "")
        for fmt in report.formats
        if fmt.note
    ]
    if notes:
        lines += ["", *notes]
    if report.graph_cache is not None:
        cache = report.graph_cache
        head = (
            f"Graph reused from `{cache.reused_from}` (weights-only re-export)" if cache.reused_from else "Graph cache"
        )
        lines += ["", f"{head}: {cache.note}."]
    if report.files:
        lines += ["", "| file | size | sha256 |", "|---|---:|---|"]
        lines += [f"| `{f.path}` | {_human_bytes(f.bytes)} | `{f.sha256}` |" for f in report.files]
    versions = ", ".join(f"{key} {value}" for key, value in report.versions.items())
    lines += ["", f"<sub>{versions}</sub>", ""]
    return "\n".join(lines)
