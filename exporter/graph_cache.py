"""Weights-only re-export: reuse the graph of a previous export when only the weights changed.

An entry is keyed by everything that shapes the graph (:func:`cache_key`): the config minus fields
that do not (its name, transformers' version, label names), the model class, task, opset, formats,
shapes, the versions of every library and the exporter's own source. It holds, per component, the
validated ``<component>.onnx`` and the traced ``<component>.pt``, both with their weights taken
out, and a manifest mapping each ONNX weight to the parameter or buffer it came from (as is, or
transposed: the TorchScript-based export folds ``Linear`` weights into transposed
``…/Transpose_output_0`` tensors), and each tensor record of the TorchScript archive to its tensor.

The mapping is built when an export is stored, by comparing values. An entry is not stored when a
large float weight matches no parameter (derived from weights some other way), when one matches
several (the exporter may have merged equal weights into one), or for a merged seq2seq decoder
(weights inside ``If`` branches). Reuse streams the new model's tensors into copies of the graph
and the archive; the caller validates the files as after any export.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from exporter.errors import ExporterError
from exporter.reproducible import WRITER_RECORDS
from exporter.weights import Weight, named_tensors, write

if TYPE_CHECKING:
    import torch

CACHE_FORMAT = 1
MANIFEST = "manifest.json"
#: Config fields that name or describe the checkpoint without changing its graph.
IGNORED_CONFIG_KEYS = frozenset({"_name_or_path", "transformers_version", "architectures", "_commit_hash"})
#: Label names do not change the graph; their number (the classifier's width) does.
LABEL_KEYS = ("id2label", "label2id")
#: A float constant of the graph larger than this that matches no parameter makes an entry not reusable.
MAX_UNMAPPED_ELEMENTS = 16
_FINGERPRINT_ELEMENTS = 32
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}


class GraphCacheError(ExporterError):
    """An entry cannot be stored or reused; the export goes on without it (the message says why)."""


@dataclass(frozen=True)
class Source:
    """Where an entry's graph came from: the export that stored it."""

    model: str
    revision: str | None

    def __str__(self) -> str:
        return f"{self.model}@{self.revision}" if self.revision else self.model


# --- the key -------------------------------------------------------------------------------------


def graph_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config fields that shape the graph: names and versions dropped, label names reduced to a count."""
    kept = {key: value for key, value in config.items() if key not in IGNORED_CONFIG_KEYS and key not in LABEL_KEYS}
    labels = config.get("id2label")
    kept["num_labels"] = len(labels) if isinstance(labels, Mapping) else config.get("num_labels")
    for key, value in kept.items():
        if isinstance(value, Mapping):
            kept[key] = graph_config(value)  # a composite model's sub-configs (text_config …)
    return kept


def source_digest() -> str:
    """sha256 of the exporter package's own Python files: a change to the code is a change of graph."""
    digest = hashlib.sha256()
    root = Path(__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def cache_key(
    config: Mapping[str, Any],
    *,
    architecture: str,
    task: str,
    opset: int,
    formats: Sequence[str],
    export_shape: Mapping[str, int],
    validation_shapes: Sequence[Mapping[str, int]],
    external_data_threshold: int,
    versions: Mapping[str, Any],
) -> str:
    """sha256 of a canonical JSON of everything that shapes the exported graphs."""
    canonical = {
        "cache_format": CACHE_FORMAT,
        "config": graph_config(config),
        "architecture": architecture,
        "task": task,
        "opset": opset,
        "formats": sorted(formats),
        "export_shape": dict(export_shape),
        "validation_shapes": [dict(shape) for shape in validation_shapes],
        "external_data_threshold": external_data_threshold,
        "versions": dict(versions),
        "python": platform.python_version(),
        "exporter_source": source_digest(),
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


# --- mapping weights to parameters ---------------------------------------------------------------


def _fingerprint(array: np.ndarray) -> tuple[str, tuple[int, ...], bytes]:
    """dtype, shape and the first elements of the first row: cheap, and exact enough to shortlist."""
    head = array[(0,) * (array.ndim - 1)][:_FINGERPRINT_ELEMENTS] if array.ndim and array.size else array
    return array.dtype.str, array.shape, np.ascontiguousarray(head).tobytes()


def map_initializers(initializers: Iterable[tuple[str, np.ndarray]], module: torch.nn.Module) -> dict[str, Any]:
    """``{initializer: {"parameter": name, "transpose": bool}}`` for every float weight of a graph.

    Raises :class:`GraphCacheError` when a large float weight matches no parameter, or one matches
    several distinct parameters (which one feeds the graph is then unknowable).
    """
    storages: dict[tuple[int, tuple[int, ...], tuple[int, ...]], str] = {}
    arrays: dict[str, np.ndarray] = {}
    for name, tensor in named_tensors(module).items():
        if not tensor.is_floating_point():
            continue
        alias = (tensor.data_ptr(), tuple(tensor.shape), tuple(tensor.stride()))
        if alias in storages:  # tied: one tensor under two names
            continue
        storages[alias] = name
        try:
            arrays[name] = tensor.cpu().numpy()
        except TypeError as e:  # bfloat16 has no numpy dtype
            raise GraphCacheError(f"parameter {name} is {tensor.dtype}, which cannot be compared") from e
    shortlist: dict[tuple[str, tuple[int, ...], bytes], list[tuple[str, bool, np.ndarray]]] = {}
    for name, array in arrays.items():
        shortlist.setdefault(_fingerprint(array), []).append((name, False, array))
        if array.ndim == 2:
            shortlist.setdefault(_fingerprint(array.T), []).append((name, True, array.T))
    mapping: dict[str, Any] = {}
    for init_name, value in initializers:
        if value.dtype.kind != "f":
            continue  # integer constants (shapes, position ids) are the graph's, not weights
        found = [(name, transpose) for name, transpose, candidate in shortlist.get(_fingerprint(value), []) if
                 np.array_equal(candidate, value)]  # fmt: skip
        if len({name for name, _ in found}) > 1:
            names = ", ".join(sorted({name for name, _ in found})[:3])
            raise GraphCacheError(f"weight {init_name} equals several parameters ({names}): they may share it")
        if found:
            mapping[init_name] = {"parameter": found[0][0], "transpose": found[0][1]}
        elif value.size > MAX_UNMAPPED_ELEMENTS:
            raise GraphCacheError(f"weight {init_name} {list(value.shape)} matches no parameter (derived from weights)")
    return mapping


# --- the cache ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredComponent:
    """What the export wrote for one component, to be stored: files by format and the method that made each."""

    name: str
    module: torch.nn.Module
    files: Mapping[str, Path]
    methods: Mapping[str, str]


class GraphCache:
    """A folder of entries, one per key: ``<root>/<key>/manifest.json`` and the component files."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def entry(self, key: str) -> Path:
        return self.root / key

    def lookup(self, key: str) -> dict[str, Any] | None:
        """The entry's manifest, or ``None``; a hit marks the entry used (for least-recently-used eviction)."""
        path = self.entry(key) / MANIFEST
        try:
            manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if manifest.get("format") != CACHE_FORMAT or manifest.get("key") != key:
            return None
        os.utime(self.entry(key))
        return manifest

    def store(self, key: str, source: Source, components: Sequence[StoredComponent]) -> None:
        """Store a passed export's graphs; :class:`GraphCacheError` (nothing stored) when they are not reusable."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".store-", dir=self.root))
        try:
            entries = {part.name: _store_component(part, staging) for part in components}
            manifest = {
                "format": CACHE_FORMAT,
                "key": key,
                "source": {"model": source.model, "revision": source.revision},
                "stored_at": time.time(),
                "components": entries,
            }
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            target = self.entry(key)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _store_component(part: StoredComponent, staging: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {"methods": dict(part.methods), "files": {}}
    if "onnx" in part.files:
        entry["files"]["onnx"] = part.files["onnx"].name
        entry["initializers"] = _store_graph(part.files["onnx"], part.module, staging / part.files["onnx"].name)
    if "torchscript" in part.files:
        entry["files"]["torchscript"] = part.files["torchscript"].name
        entry["records"] = _store_trace(
            part.files["torchscript"], part.module, staging / part.files["torchscript"].name
        )
    return entry


def _storage_bytes(tensor: torch.Tensor) -> bytes:
    import torch

    storage = tensor.untyped_storage()
    return bytes(torch.empty(0, dtype=torch.uint8).set_(storage).numpy().tobytes())


def _store_trace(path: Path, module: torch.nn.Module, target: Path) -> dict[str, Any]:
    """Map each tensor record of the TorchScript archive to the parameter or buffer it holds, then save
    the archive with those records emptied. ``{record: {"tensor": name, "bytes": size}}``."""
    import torch

    shortlist: dict[tuple[int, bytes], list[tuple[str, bytes]]] = {}
    storages: set[int] = set()
    for name, tensor in named_tensors(module).items():
        if tensor.untyped_storage().data_ptr() in storages:
            continue  # tied: one storage under two names
        storages.add(tensor.untyped_storage().data_ptr())
        raw = _storage_bytes(tensor)
        shortlist.setdefault((len(raw), raw[:256]), []).append((name, raw))
    reader = torch._C.PyTorchFileReader(str(path))
    mapping: dict[str, Any] = {}
    writer = torch._C.PyTorchFileWriter(str(target))
    for record in reader.get_all_records():
        if record in WRITER_RECORDS:
            continue
        data = reader.get_record(record)
        if record.startswith("data/"):
            found = [name for name, raw in shortlist.get((len(data), data[:256]), []) if raw == data]
            if len(found) != 1:
                why = (
                    "matches no parameter or buffer"
                    if not found
                    else f"equals several tensors ({', '.join(found[:3])})"
                )
                raise GraphCacheError(f"{path.name}: record {record} {why}")
            mapping[record] = {"tensor": found[0], "bytes": len(data)}
            data = b""
        writer.write_record(record, data, len(data))
    writer.write_end_of_file()
    return mapping


def _store_graph(path: Path, module: torch.nn.Module, target: Path) -> dict[str, Any]:
    """Map the graph's weights to the module's tensors, then save it with the mapped weights emptied."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    if any(attribute.g.initializer or attribute.graphs for node in model.graph.node for attribute in node.attribute):
        raise GraphCacheError(f"{path.name} has weights inside subgraphs (a merged decoder): not cached yet")
    mapping = map_initializers(((t.name, numpy_helper.to_array(t)) for t in model.graph.initializer), module)
    for tensor in model.graph.initializer:
        if tensor.name in mapping:
            for field in ("raw_data", "float_data", "double_data", "external_data"):
                tensor.ClearField(field)
            tensor.data_location = onnx.TensorProto.DEFAULT
    onnx.save_model(model, str(target))
    return mapping


# --- reuse ----------------------------------------------------------------------------------------


def write_from_entry(
    cache: GraphCache,
    key: str,
    manifest: Mapping[str, Any],
    modules: Mapping[str, torch.nn.Module],
    output_dir: Path,
    external_data_threshold: int,
) -> tuple[dict[tuple[str, str], list[Path]], dict[tuple[str, str], str]]:
    """Write every component's files from the entry with the new modules' weights.

    Returns the files and methods by ``(format, component)``, as an export does. Raises
    :class:`GraphCacheError` when the entry does not fit the modules (names, shapes, dtypes).
    """
    components: Mapping[str, Any] = manifest["components"]
    if set(components) != set(modules):
        raise GraphCacheError(f"the entry has components {sorted(components)}, the export {sorted(modules)}")
    files: dict[tuple[str, str], list[Path]] = {}
    methods: dict[tuple[str, str], str] = {}
    for name, entry in components.items():
        source = cache.entry(key)
        for fmt, file_name in entry["files"].items():
            if file_name != f"{name}{SUFFIXES.get(fmt)}":  # a manifest names nothing but the component's own file
                raise GraphCacheError(f"the entry's {fmt} file of {name} is {file_name!r}")
            if fmt == "onnx":
                files[fmt, name] = write_graph(
                    source / file_name, entry["initializers"], modules[name], output_dir / file_name,
                    external_data_threshold,
                )  # fmt: skip
            else:
                trace = write_trace(source / file_name, entry["records"], modules[name], output_dir / file_name)
                files[fmt, name] = [trace]
            methods[fmt, name] = entry["methods"][fmt]
    return files, methods


def write_graph(
    cached: Path, mapping: Mapping[str, Any], module: torch.nn.Module, target: Path, external_data_threshold: int
) -> list[Path]:
    """The cached graph with the module's tensors as its weights; ``<name>_data`` when they are large."""
    import onnx
    from onnx.helper import np_dtype_to_tensor_dtype

    model = onnx.load(str(cached), load_external_data=False)
    tensors = named_tensors(module)
    weights: list[Weight] = []
    kept = []
    for initializer in model.graph.initializer:
        how = mapping.get(initializer.name)
        if how is None:
            kept.append(initializer)
            continue
        tensor = tensors.get(how["parameter"])
        if tensor is None:
            raise GraphCacheError(f"the model has no parameter {how['parameter']} (for {initializer.name})")
        tensor = tensor.T if how["transpose"] else tensor
        try:
            data_type = np_dtype_to_tensor_dtype(tensor.numpy().dtype)
        except TypeError as e:
            raise GraphCacheError(f"parameter {how['parameter']} is {tensor.dtype}") from e
        if list(tensor.shape) != list(initializer.dims) or data_type != initializer.data_type:
            raise GraphCacheError(
                f"{how['parameter']} is {tensor.dtype}{list(tensor.shape)}, the graph's {initializer.name} "
                f"{onnx.TensorProto.DataType.Name(initializer.data_type).lower()}{list(initializer.dims)}"
            )
        weights.append(Weight(initializer.name, data_type, tuple(initializer.dims), tensor))
    if len(weights) != len(mapping):
        raise GraphCacheError(f"{cached.name} lacks weights its manifest maps")
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return write(model, weights, target, external_data_threshold)


def write_trace(cached: Path, records: Mapping[str, Any], module: torch.nn.Module, target: Path) -> Path:
    """The cached TorchScript archive with each tensor record written from the module's tensor it maps to."""
    import torch

    tensors = named_tensors(module)
    reader = torch._C.PyTorchFileReader(str(cached))
    names = [record for record in reader.get_all_records() if record not in WRITER_RECORDS]
    if not set(records) <= set(names):
        raise GraphCacheError(f"{cached.name} lacks records its manifest maps")
    writer = torch._C.PyTorchFileWriter(str(target))
    for record in names:
        if record in records:
            tensor = tensors.get(records[record]["tensor"])
            if tensor is None:
                raise GraphCacheError(f"the model has no parameter or buffer {records[record]['tensor']} ({record})")
            storage = tensor.untyped_storage()
            if storage.nbytes() != records[record]["bytes"]:
                raise GraphCacheError(f"{records[record]['tensor']} has {storage.nbytes()} bytes, the trace's {record} "
                                      f"{records[record]['bytes']}")  # fmt: skip
            writer.write_record(record, storage, storage.nbytes())  # type: ignore[arg-type]  # stubs lag: takes one
        else:
            data = reader.get_record(record)
            writer.write_record(record, data, len(data))
    writer.write_end_of_file()
    return target


# --- size limit -----------------------------------------------------------------------------------


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def entries(root: Path) -> list[Path]:
    """Every entry folder under ``root`` (at any depth: the bot keeps one subfolder per repo)."""
    return [manifest.parent for manifest in root.rglob(MANIFEST)] if root.is_dir() else []


#: A half-written entry (``.store-*``) this old belongs to an export that died while storing.
STALE_STAGING_SECONDS = 3600.0


def evict(root: Path, max_bytes: int) -> list[Path]:
    """Delete least-recently-used entries until all of ``root`` holds at most ``max_bytes``; the deleted.

    Half-written entries an export left when it died are deleted too (not listed).
    """
    if root.is_dir():
        for staging in root.rglob(".store-*"):
            if time.time() - staging.stat().st_mtime > STALE_STAGING_SECONDS:
                shutil.rmtree(staging, ignore_errors=True)
    sized = sorted(((path.stat().st_mtime, _size(path), path) for path in entries(root)), key=lambda e: e[0])
    total = sum(size for _, size, _ in sized)
    removed = []
    for _, size, path in sized:
        if total <= max_bytes:
            break
        shutil.rmtree(path, ignore_errors=True)
        total -= size
        removed.append(path)
    return removed
