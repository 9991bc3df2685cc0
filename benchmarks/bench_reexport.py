"""Benchmark: weights-only re-export from the graph cache against a full export (not a test).

Builds DistilBERT-base at its real size twice with other random weights (``reweight_checkpoint``:
every weight different, as after training), then per round, in fresh processes of the real CLI:
a full export without a cache, a full export of A into an empty ``--cache-dir`` (which stores the
graph), and an export of B with that cache (the weights-only re-export). Rounds alternate; medians.

    python benchmarks/bench_reexport.py                     # DistilBERT-base, 3 rounds
    python benchmarks/bench_reexport.py --models bert --repeat 1

Results go to ``benchmarks/results/reexport.json``; a markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench_export import TASKS, build, run_cli

NAMES = {"distilbert": "DistilBERT-base", "bert": "BERT-base", "gpt2": "GPT-2 (124M), with past"}


def export(checkpoint: Path, output: Path, task: str, formats: str, cache: Path | None) -> dict[str, Any]:
    shutil.rmtree(output, ignore_errors=True)
    run = run_cli(checkpoint, output, formats, task, *(["--cache-dir", str(cache)] if cache is not None else []))
    return {**run, "steps": {step: cost["seconds"] for step, cost in run["steps"].items()}}


def bench(model: str, root: Path, repeat: int, formats: str) -> dict[str, Any]:
    from exporter.sample import reweight_checkpoint

    task = TASKS[model]
    first = reweight_checkpoint(build(model, root / "a"), seed=1)
    second = root / "b"
    shutil.copytree(first, second)
    reweight_checkpoint(second, seed=2)
    runs: dict[str, list[dict[str, Any]]] = {"full": [], "full_and_store": [], "reuse": []}
    for _ in range(repeat):
        cache = root / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        runs["full"].append(export(first, root / "out", task, formats, None))
        runs["full_and_store"].append(export(first, root / "out", task, formats, cache))
        reused = export(second, root / "out", task, formats, cache)
        if not (reused["graph_cache"] or {}).get("reused_from"):
            raise RuntimeError(f"the second export did not reuse the graph: {reused['graph_cache']}")
        runs["reuse"].append(reused)
    medians = {kind: statistics.median(r["wall_s"] for r in results) for kind, results in runs.items()}
    return {
        "model": model,
        "formats": formats,
        "runs": runs,
        "median_wall_s": medians,
        "median_peak_rss_gib": {k: statistics.median(r["peak_rss_gib"] for r in v) for k, v in runs.items()},
        "ratio_reuse_to_full": round(medians["reuse"] / medians["full"], 3),
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| model | formats | full export | full export + store | weights-only re-export | ratio (re-export / full) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        m = r["median_wall_s"]
        lines.append(
            f"| {NAMES[r['model']]} | {r['formats']} | {m['full']:.2f} s | {m['full_and_store']:.2f} s "
            f"| {m['reuse']:.2f} s | {r['ratio_reuse_to_full']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="distilbert")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", default="onnx,torchscript")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "reexport.json")
    args = parser.parse_args()
    results = []
    for model in args.models.split(","):
        with tempfile.TemporaryDirectory(prefix=f"bench-reexport-{model}-") as tmp:
            results.append(bench(model, Path(tmp), args.repeat, args.formats))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
