"""Prometheus text exposition, written by hand (a few counters and gauges)."""

from __future__ import annotations

import threading
from collections import Counter

from bot.jobs.model import JobStore


class Metrics:
    """Counters of webhook answers by result; job gauges are read from the store."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._webhooks: Counter[str] = Counter()

    def webhook(self, result: str) -> None:
        with self._lock:
            self._webhooks[result] += 1

    def render(self, store: JobStore) -> str:
        lines = [
            "# HELP export_bot_webhooks_total Webhook deliveries by answer.",
            "# TYPE export_bot_webhooks_total counter",
        ]
        with self._lock:
            webhooks = dict(self._webhooks)
        for result in (
            "accepted",
            "duplicate",
            "ignored",
            "unauthorized",
            "forbidden",
            "too_large",
            "timeout",
            "malformed",
        ):
            lines.append(f'export_bot_webhooks_total{{result="{result}"}} {webhooks.get(result, 0)}')
        lines += ["# HELP export_bot_jobs Jobs in the store by status.", "# TYPE export_bot_jobs gauge"]
        for status, count in store.counts().items():
            lines.append(f'export_bot_jobs{{status="{status}"}} {count}')
        lines += [
            "# HELP export_bot_up 1 while the web process serves.",
            "# TYPE export_bot_up gauge",
            "export_bot_up 1",
        ]
        return "\n".join(lines) + "\n"
