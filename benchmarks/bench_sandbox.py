"""Per-export overhead of the container backend (Podman + runc) against bubblewrap.

Alternates the two backends in one run (A, B, A, B…) so that the machine's load hits both alike,
on two workloads: a trivial command (``import exporter``: the fixed cost of starting the sandbox)
and a real export of a tiny BERT checkpoint (ONNX + TorchScript, validated), the bot's own
``export_in_sandbox``. Reports the median of each and the container/bwrap difference and ratio.

    python benchmarks/bench_sandbox.py                  # 5 rounds of each workload
    python benchmarks/bench_sandbox.py --rounds 3 --image hub-exporter-bot:latest
    python benchmarks/bench_sandbox.py --rounds 15 --workloads trivial --out benchmarks/results/sandbox-trivial.json

Needs bubblewrap, podman + runc, and the image (scripts/build-image.sh).
Results go to ``benchmarks/results/sandbox.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.pipeline.repo_config import RepoConfig  # noqa: E402
from bot.pipeline.sandboxed_export import ExportLimits, export_in_sandbox  # noqa: E402
from bot.sandbox import BwrapRunner, ContainerRunner, SandboxRequest, SandboxRunner  # noqa: E402
from exporter.sample import build_sample_checkpoint  # noqa: E402

PODMAN = "podman --runtime runc --cgroup-manager=cgroupfs"


def trivial(runner: SandboxRunner, work: Path) -> float:
    (work / "snapshot").mkdir()
    (work / "output").mkdir()
    request = SandboxRequest(
        args=("-c", "import exporter"),
        snapshot_dir=work / "snapshot",
        output_dir=work / "output",
        timeout=120,
        memory_bytes=4 << 30,
    )
    start = time.perf_counter()
    result = runner.run(request)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{runner.name}: {result.last_line()}")
    return seconds


def exporting(checkpoint: Path) -> Callable[[SandboxRunner, Path], float]:
    def run(runner: SandboxRunner, work: Path) -> float:
        snapshot = work / "snapshot"
        shutil.copytree(checkpoint, snapshot)
        limits = ExportLimits(timeout=900, memory_bytes=8 << 30, max_file_bytes=1 << 30, threads=2)
        start = time.perf_counter()
        export_in_sandbox(runner, snapshot, work / "output-0", RepoConfig(), None, limits)
        return time.perf_counter() - start

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--image", default="hub-exporter-bot:latest")
    parser.add_argument("--container-cli", default=PODMAN)
    parser.add_argument("--workloads", default="trivial,tiny_bert_export", help="comma-separated subset")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "sandbox.json")
    args = parser.parse_args()
    runners: dict[str, SandboxRunner] = {
        "bwrap": BwrapRunner(),
        "container": ContainerRunner(image=args.image, cli=args.container_cli),
    }
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        checkpoint = build_sample_checkpoint(Path(tmp) / "ckpt", "bert", "sequence-classification")
        known = {"trivial": trivial, "tiny_bert_export": exporting(checkpoint)}
        workloads = {name: known[name] for name in args.workloads.split(",")}
        times: dict[str, dict[str, list[float]]] = {w: {n: [] for n in runners} for w in workloads}
        for workload, measure in workloads.items():
            for i in range(args.rounds):
                for name, runner in runners.items():  # alternated: A, B, A, B…
                    work = Path(tmp) / f"{workload}-{name}-{i}"
                    work.mkdir()
                    times[workload][name].append(measure(runner, work))
                    shutil.rmtree(work, ignore_errors=True)
                print(workload, i, {n: round(t[-1], 2) for n, t in times[workload].items()}, flush=True)
    summary = {}
    for workload, by_runner in times.items():
        bwrap, container = statistics.median(by_runner["bwrap"]), statistics.median(by_runner["container"])
        summary[workload] = {
            "median_s": {"bwrap": round(bwrap, 3), "container": round(container, 3)},
            "container_minus_bwrap_s": round(container - bwrap, 3),
            "container_over_bwrap": round(container / bwrap, 3),
            "runs_s": {n: [round(t, 3) for t in ts] for n, ts in by_runner.items()},
        }
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()},
        "rounds": args.rounds,
        "container_cli": args.container_cli,
        "workloads": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
