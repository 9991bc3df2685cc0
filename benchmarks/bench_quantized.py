"""Benchmark: latency of the q8 variant (``model_quantized.onnx``) against eager PyTorch (not a test).

Builds a random-weight DistilBERT-base classifier, exports it with the real CLI
(``--formats onnx --dtypes fp32,q8``, so the q8 file passes its agreement criterion first), then
times in one process, alternating the candidates within each round so load on the machine hits
them alike: eager PyTorch, the project's fp32 and q8 files, and — with ``--optimum`` (the Optimum
venv of ``tests/support/optimum.py``, built on first use) — Optimum's fp32 graph quantized with the same settings
(:func:`exporter.variants.build_variant`). ONNX Runtime CPU provider, 2 intra-op threads, torch
2 threads, sequence 128, batch 1 and 8, median of ``--runs`` after 3 warm-up runs.

    python benchmarks/bench_quantized.py
    python benchmarks/bench_quantized.py --optimum

Results go to ``benchmarks/results/quantized.json``; a markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_export import SIZES

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.support
from tests.support.optimum import ensure_optimum_venv

SIZE = SIZES["distilbert"]  # DistilBERT-base, as bench_export.py builds it
THREADS = 2


def export(checkpoint: Path, output: Path) -> None:
    exe = Path(sys.executable).with_name("exporter")
    command = [str(exe), "export", "--model", str(checkpoint), "--formats", "onnx", "--dtypes", "fp32,q8", "--quiet"]
    subprocess.run([*command, str(output)], check=True)


def export_optimum(python: str, checkpoint: Path, output: Path) -> Path:
    """Optimum's fp32 graph of the same checkpoint, quantized here with the project's q8 settings."""
    from exporter.variants import build_variant

    command = [python, "-m", "optimum.exporters.onnx", "--model", str(checkpoint), "--task", "text-classification"]
    subprocess.run([*command, str(output)], check=True, capture_output=True)
    build_variant(output / "model.onnx", "q8", 2**31)
    return output / "model_quantized.onnx"


def session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ops(path: Path) -> dict[str, int]:
    import onnx

    counts = Counter(node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node)
    return dict(counts.most_common(8))


def time_alternating(candidates: dict[str, Callable[[], Any]], runs: int) -> dict[str, float]:
    """Median ms of each candidate; every round runs each once, in turn."""
    for call in candidates.values():
        for _ in range(3):
            call()
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(runs):
        for name, call in candidates.items():
            start = time.perf_counter()
            call()
            samples[name].append((time.perf_counter() - start) * 1000)
    return {name: round(statistics.median(values), 2) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--optimum", action="store_true", help="also Optimum's graph, quantized alike")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "quantized.json")
    args = parser.parse_args()

    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification

    from exporter.sample import build_sample_checkpoint

    torch.set_num_threads(THREADS)
    work = Path(tempfile.mkdtemp(prefix="bench-q8-"))
    checkpoint = build_sample_checkpoint(work / "checkpoint", "distilbert", "sequence-classification", **SIZE)
    export(checkpoint, work / "project")
    files = {"project fp32": work / "project" / "model.onnx", "project q8": work / "project" / "model_quantized.onnx"}
    if args.optimum:
        files["optimum q8"] = export_optimum(str(ensure_optimum_venv()), checkpoint, work / "optimum")
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    sessions = {name: session(path) for name, path in files.items()}
    rows = []
    for batch in (1, 8):
        ids = np.random.default_rng(0).integers(0, SIZE["vocab_size"], (batch, 128), dtype=np.int64)
        mask = np.ones_like(ids)
        torch_ids, torch_mask = torch.from_numpy(ids), torch.from_numpy(mask)

        def eager(ids: torch.Tensor = torch_ids, mask: torch.Tensor = torch_mask) -> Any:
            with torch.no_grad():
                return model(input_ids=ids, attention_mask=mask)

        candidates: dict[str, Callable[[], Any]] = {"eager": eager}
        for name, sess in sessions.items():
            feeds = {i.name: {"input_ids": ids, "attention_mask": mask}[i.name] for i in sess.get_inputs()}
            candidates[name] = lambda sess=sess, feeds=feeds: sess.run(None, feeds)
        medians = time_alternating(candidates, args.runs)
        speedups = {name: round(medians["eager"] / ms, 2) for name, ms in medians.items() if name != "eager"}
        rows.append({"batch": batch, "sequence": 128, "median_ms": medians, "speedup_vs_eager": speedups})
    result = {
        "model": "DistilBERT-base (random weights), sequence-classification",
        "threads": THREADS,
        "runs": args.runs,
        "sizes_bytes": {name: path.stat().st_size for name, path in files.items()},
        "ops": {name: ops(path) for name, path in files.items()},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    names = ["eager", *files]
    print("| batch × seq | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for row in rows:
        cells = [f"{row['median_ms']['eager']:.1f} ms"]
        cells += [f"{row['median_ms'][n]:.1f} ms ({row['speedup_vs_eager'][n]}×)" for n in files]
        print(f"| {row['batch']} × 128 | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
