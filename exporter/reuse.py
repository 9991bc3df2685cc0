"""The graph-cache step of an export: reuse a stored graph before exporting, store a passed export after.

:func:`exporter.run.run_export` asks :meth:`CacheUse.reuse` first; ``None`` means "export in full"
(no entry, or the entry did not fit or did not validate: the note says which). A reused graph is
validated exactly as an exported one. After a full export that passed, :meth:`CacheUse.store`
keeps its graphs for the next export with the same key (:mod:`exporter.graph_cache`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exporter.components import Component
from exporter.formats import ExportContext
from exporter.graph_cache import GraphCache, GraphCacheError, Source, StoredComponent, cache_key, write_from_entry
from exporter.merge import MERGED_FROM
from exporter.report import FormatResult, GraphCacheResult, Report
from exporter.validation import validate
from exporter.versions import versions

if TYPE_CHECKING:
    from exporter.loading import Loaded
    from exporter.run import ExportRequest

Parts = Sequence[tuple[Component, ExportContext]]
Files = dict[tuple[str, str], list[Path]]
Timed = Callable[[str, str], AbstractContextManager[None]]


@dataclass
class CacheUse:
    """One export's use of the cache: its key (``None`` when it cannot use one) and what happened."""

    cache: GraphCache
    key: str | None
    note: str
    reused_from: str | None = None

    @classmethod
    def start(cls, request: ExportRequest, loaded: Loaded, parts: Parts) -> CacheUse | None:
        """``None`` without ``request.cache_dir``; else the key of this export, or why it has none."""
        if request.cache_dir is None:
            return None
        cache = GraphCache(request.cache_dir)
        if request.trust_remote_code:
            return cls(cache, None, "not used: the checkpoint's own code (--trust-remote-code) is not in the key")
        if "onnx" in request.formats and any(component.name in MERGED_FROM for component, _ in parts):
            return cls(
                cache, None, "not used: a merged seq2seq decoder keeps weights inside If branches (not cached yet)"
            )
        key = cache_key(
            loaded.config.to_dict(),
            architecture=type(loaded.model).__name__,
            task=loaded.task,
            opset=request.opset,
            formats=request.formats,
            export_shape=request.export_shape,
            validation_shapes=request.validation_shapes,
            external_data_threshold=request.external_data_threshold,
            versions=versions(request.opset),
        )
        return cls(cache, key, "no entry for this key")

    @property
    def result(self) -> GraphCacheResult:
        return GraphCacheResult(key=self.key, reused_from=self.reused_from, note=self.note)

    def reuse(
        self, parts: Parts, request: ExportRequest, timed: Timed, atol: float, rtol: float
    ) -> tuple[Files, list[FormatResult]] | None:
        """The files and validation results from the stored graph, or ``None`` to export in full."""
        manifest = self.cache.lookup(self.key) if self.key else None
        if manifest is None or self.key is None:
            return None
        source = str(Source(manifest["source"]["model"], manifest["source"].get("revision")))
        modules = {component.name: component.module for component, _ in parts}
        with timed("reuse", f"Writing the new weights into the graph of {source}"):
            try:
                files, methods = write_from_entry(
                    self.cache, self.key, manifest, modules, request.output_dir, request.external_data_threshold
                )
            except (GraphCacheError, OSError, KeyError, RuntimeError) as e:
                for name in modules:  # what it may have written before failing
                    for suffix in (".onnx", ".onnx_data", ".pt"):
                        (request.output_dir / f"{name}{suffix}").unlink(missing_ok=True)
                self.note = f"the graph of {source} did not take the new weights ({e}); exported in full"
                return None
        with timed("validate", f"Validating on {len(request.validation_shapes)} shapes"):
            results = validate(parts, request.formats, request.validation_shapes, atol, rtol)
        results = [r.model_copy(update={"method": methods[r.format, r.component]}) for r in results]
        failed = [r for r in results if not r.passed]
        if failed:
            for paths in files.values():
                for path in paths:
                    path.unlink(missing_ok=True)
            self.note = (
                f"the graph of {source} did not validate with the new weights ({failed[0].label}); exported in full"
            )
            return None
        self.reused_from = source
        self.note = f"weights written into the graph of {source}, validated as usual"
        return files, results

    def store(self, parts: Parts, files: Mapping[tuple[str, str], list[Path]], report: Report, timed: Timed) -> None:
        """Keep a passed full export's graphs under its key; the note says whether they were stored."""
        if self.key is None or self.reused_from is not None or report.status != "passed":
            return
        methods: dict[tuple[str, str], Any] = {(r.format, r.component): r.method for r in report.formats}
        components = [
            StoredComponent(
                name=component.name,
                module=component.module,
                files={fmt: paths[0] for (fmt, name), paths in files.items() if name == component.name and paths},
                methods={fmt: method for (fmt, name), method in methods.items() if name == component.name},
            )
            for component, _ in parts
        ]
        with timed("cache_store", "Storing the graph for weights-only re-exports"):
            try:
                self.cache.store(self.key, Source(report.model, report.revision), components)
            except (GraphCacheError, OSError) as e:
                self.note = f"{self.note}; not stored: {e}"
                return
        first = "no entry for this key" if self.note == "no entry for this key" else self.note
        self.note = f"{first}; stored for the next export with new weights"
