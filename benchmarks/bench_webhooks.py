"""Load test of the webhook intake: a burst of signed deliveries against a real ``export-bot serve``.

On loopback only, bounded in count and time. No worker runs, so only the intake is measured: verify
the secret, parse, filter, store the job durably (SQLite with ``synchronous=FULL``, or Redis with the
Dramatiq message), answer 202. One delivery in five repeats an earlier key (same repo and commit),
sent while the original may still be in flight. Checks: every delivery answered 2xx, each distinct
key got exactly one job id, the store holds exactly as many jobs as distinct keys (none lost or
doubled). Records latency percentiles and throughput.

    python benchmarks/bench_webhooks.py                         # 5,000 deliveries, both stores, 8/32/128 in flight
    python benchmarks/bench_webhooks.py --deliveries 5000 --concurrency 32 --stores sqlite

Redis mode needs a server on 127.0.0.1:6379 (a key prefix of its own is used and deleted after).
Results go to ``benchmarks/results/webhooks.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret"
MAX_DELIVERIES = 20_000
REDIS = "redis://127.0.0.1:6379/0"


def deliveries(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """``count`` (repo, sha) pairs: four fifths distinct, one fifth repeats of earlier ones, shuffled."""
    rng = random.Random(seed)
    distinct = count - count // 5
    keys = [(f"bench/model-{i % 97}", f"{rng.getrandbits(160):040x}") for i in range(distinct)]
    plan = keys + [rng.choice(keys) for _ in range(count - distinct)]
    rng.shuffle(plan)
    return plan


def payload(repo: str, sha: str) -> bytes:
    return json.dumps(
        {
            "event": {"action": "update", "scope": "repo.content"},
            "repo": {"type": "model", "name": repo, "id": "x", "private": False, "headSha": sha},
            "updatedRefs": [{"ref": "refs/heads/main", "oldSha": None, "newSha": sha}],
            "webhook": {"id": "bench", "version": 3},
        }
    ).encode()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(store_url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``export-bot serve --workers 0`` on a free loopback port; waits for /healthz."""
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(workdir),
        "PYTHONPATH": str(ROOT),
        "EXPORT_BOT_WEBHOOK_SECRET": SECRET,
        "EXPORT_BOT_STORE_URL": store_url,
        "EXPORT_BOT_WORK_DIR": str(workdir / "work"),
        "HF_ENDPOINT": "http://127.0.0.1:9",  # nothing may reach a Hub
    }
    command = [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "0"]
    with (workdir / "serve.log").open("ab") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((workdir / "serve.log").read_text()[-3000:])
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the bot did not start")


class Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: the load generator must cost little CPU
    (httpx spends ~2.5 ms per request here, twice what the server spends answering it)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, secret: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"X-Webhook-Secret: {secret}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        length, close = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and "close" in value.lower():
                close = True
        data = await self.reader.readexactly(length)
        if close:
            await self.close()
        return status, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def burst(url: str, plan: list[tuple[str, str]], concurrency: int, timeout: float) -> list[dict[str, Any]]:
    """Send every delivery with ``concurrency`` connections in flight; one record per delivery."""
    results: list[dict[str, Any]] = [{} for _ in plan]
    host, port = url.removeprefix("http://").split(":")
    next_index = iter(range(len(plan)))

    async def sender() -> None:
        connection = Connection(host, int(port))
        for index in next_index:
            repo, sha = plan[index]
            start = time.perf_counter()
            try:
                status, data = await asyncio.wait_for(
                    connection.post("/webhooks/hub", payload(repo, sha), SECRET), timeout
                )
                body = json.loads(data) if status == 202 else {}
            except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError) as e:
                await connection.close()
                status, body = None, {"error": repr(e)}
            results[index] = {
                "key": f"{repo}@{sha}",
                "status": status,
                "job_id": body.get("job_id"),
                "duplicate": body.get("duplicate"),
                "ms": (time.perf_counter() - start) * 1000,
            }
        await connection.close()

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return results


def warm_up(url: str) -> None:
    """A few deliveries the bot ignores (a dataset repo): the code paths are hot, no job is made."""
    body = json.loads(payload("bench/warm-up", "0" * 39 + "1"))
    body["repo"]["type"] = "dataset"
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(20):
            response = client.post("/webhooks/hub", json=body, headers={"X-Webhook-Secret": SECRET})
            assert response.status_code == 200, response.text


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def check(results: list[dict[str, Any]], jobs_in_store: int) -> dict[str, Any]:
    """The correctness figures: 2xx count, job ids per key, jobs in the store."""
    ids_per_key: dict[str, set[str]] = {}
    for r in results:
        if r["job_id"]:
            ids_per_key.setdefault(r["key"], set()).add(r["job_id"])
    distinct_keys = len({r["key"] for r in results})
    statuses = Counter(str(r["status"]) for r in results)
    return {
        "deliveries": len(results),
        "distinct_keys": distinct_keys,
        "answered_2xx": sum(1 for r in results if r["status"] is not None and 200 <= r["status"] < 300),
        "statuses": dict(statuses),
        "created": sum(1 for r in results if r["duplicate"] is False),
        "keys_with_one_job_id": sum(1 for ids in ids_per_key.values() if len(ids) == 1),
        "keys_with_several_job_ids": sum(1 for ids in ids_per_key.values() if len(ids) > 1),
        "jobs_in_store": jobs_in_store,
        "lost": max(distinct_keys - jobs_in_store, 0),
        "doubled": max(jobs_in_store - distinct_keys, 0),
    }


def run(store: str, count: int, concurrency: int, timeout: float = 30.0) -> dict[str, Any]:
    """One burst against a fresh store; returns correctness and timing figures."""
    count = min(count, MAX_DELIVERIES)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
        workdir = Path(tmp)
        url_of_store = f"sqlite:///{workdir / 'jobs.sqlite3'}" if store == "sqlite" else f"{REDIS}?prefix={prefix}"
        proc, url = start_server(url_of_store, workdir)
        try:
            plan = deliveries(count)
            warm_up(url)
            start = time.perf_counter()
            results = asyncio.run(burst(url, plan, concurrency, timeout))
            seconds = time.perf_counter() - start
        finally:
            proc.terminate()
            proc.wait(10)
        from bot.jobs.backends import open_store

        opened = open_store(url_of_store)
        try:
            jobs_in_store = sum(opened.counts().values())
        finally:
            if store == "redis":
                _drop_prefix(prefix)
            opened.close()
    latencies = [r["ms"] for r in results]
    return {
        "store": store,
        "concurrency": concurrency,
        **check(results, jobs_in_store),
        "seconds": round(seconds, 3),
        "throughput_per_s": round(len(results) / seconds, 1),
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 2),
            "p90": round(percentile(latencies, 90), 2),
            "p99": round(percentile(latencies, 99), 2),
            "max": round(max(latencies), 2),
            "mean": round(statistics.fmean(latencies), 2),
        },
    }


def _drop_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS)
    keys = list(client.scan_iter(f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--stores", nargs="+", default=["sqlite", "redis"], choices=["sqlite", "redis"])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "webhooks.json")
    args = parser.parse_args()
    runs = []
    for store in args.stores:
        for concurrency in args.concurrency:
            result = run(store, args.deliveries, concurrency)
            runs.append(result)
            lat = result["latency_ms"]
            print(
                f"{store:<6} c={concurrency:<3} {result['deliveries']} deliveries in {result['seconds']} s"
                f" ({result['throughput_per_s']}/s)  p50 {lat['p50']} p90 {lat['p90']} p99 {lat['p99']}"
                f" max {lat['max']} ms  2xx {result['answered_2xx']}  jobs {result['jobs_in_store']}"
                f"/{result['distinct_keys']}  lost {result['lost']} doubled {result['doubled']}"
            )
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "runs": runs}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
