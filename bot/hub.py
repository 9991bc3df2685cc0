"""Everything the bot asks of the Hub, with outside failures translated where they enter.

Transient failures (network, timeouts, 408/429/5xx) become :class:`TransientJobError`;
401/403/404 and other 4xx become :class:`HubRefusedError`. Only this module holds the token.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_url
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from bot.errors import CheckpointRejectedError, HubRefusedError, TransientJobError


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Network errors of the HTTP client huggingface_hub uses (httpx2 in 2.x, httpx in 1.x)."""
    errors: list[type[BaseException]] = [TimeoutError, ConnectionError]
    for name in ("httpx2", "httpx"):
        with suppress(ImportError, AttributeError):
            errors.append(importlib.import_module(name).TransportError)
    return tuple(errors)


_TRANSPORT_ERRORS = _transport_errors()
MARKER_RE = re.compile(r"<!-- export-bot: sha=([0-9a-f]{40}) -->")
FAILURE_MARKER_RE = re.compile(r"<!-- export-bot-failure: sha=([0-9a-f]{40}) -->")
_TRANSIENT_STATUS = frozenset({408, 425, 429})


def marker(sha: str) -> str:
    """The line at the top of every bot PR description that names the exported commit."""
    return f"<!-- export-bot: sha={sha} -->"


def failure_marker(sha: str) -> str:
    """The line at the top of the bot's discussion about a commit whose export failed."""
    return f"<!-- export-bot-failure: sha={sha} -->"


@contextmanager
def hub_errors(action: str) -> Iterator[None]:
    """Translate Hub client failures into job errors, keeping the cause."""
    try:
        yield
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else None
        message = f"{action}: Hub answered {status}: {e.server_message or str(e).splitlines()[0]}"
        if status is None or status >= 500 or status in _TRANSIENT_STATUS:
            raise TransientJobError(message) from e
        raise HubRefusedError(message) from e
    except _TRANSPORT_ERRORS as e:
        raise TransientJobError(f"{action}: {type(e).__name__}: {e}") from e


def set_hub_timeout(seconds: float) -> None:
    """Give huggingface_hub's requests a timeout where it passes none: a hung Hub must not hang a worker.

    Its HTTP calls pass ``timeout=None`` explicitly, which overrides any client default, so a request
    hook fills in the missing timeouts instead.
    """
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils import _http

    base = getattr(_http, "default_client_factory", None)
    if base is None:  # another huggingface_hub layout: keep its defaults
        return
    limits = dict.fromkeys(("connect", "read", "write", "pool"), seconds)

    def apply_timeout(request: Any) -> None:
        current = request.extensions.get("timeout") or {}
        if all(value is None for value in current.values()):
            request.extensions["timeout"] = dict(limits)

    def factory() -> Any:
        client = base()
        hooks = client.event_hooks
        hooks["request"] = [*hooks.get("request", []), apply_timeout]
        client.event_hooks = hooks
        return client

    set_client_factory(factory)


@dataclass(frozen=True)
class BotPullRequest:
    """An open PR by the bot and the commit it exported (from the description's marker)."""

    num: int
    sha: str | None
    url: str


@dataclass(frozen=True)
class OpenedPullRequest:
    num: int
    url: str
    commit: str


@dataclass(frozen=True)
class BotDiscussion:
    """A discussion by the bot about a failed export, and the commit it names."""

    num: int
    sha: str | None
    url: str
    status: str


class HubClient:
    """The bot's Hub calls, bound to one endpoint, token and bot user name."""

    def __init__(self, *, endpoint: str, token: str | None, bot_user: str) -> None:
        self.api = HfApi(endpoint=endpoint, token=token)
        self.endpoint = endpoint.rstrip("/")
        self.bot_user = bot_user

    def file_sizes(self, repo: str, sha: str) -> dict[str, int | None]:
        """Every file at the commit with its size, without downloading anything."""
        with hub_errors(f"reading {repo}@{sha[:8]}"):
            info = self.api.model_info(repo, revision=sha, files_metadata=True)
        return {s.rfilename: s.size for s in info.siblings or []}

    def fetch_capped(self, repo: str, sha: str, filename: str, cap: int) -> bytes:
        """One small file at ``sha``, streamed and abandoned past ``cap`` bytes (a listing can be stale)."""
        url = hf_hub_url(repo, filename, revision=sha, endpoint=self.endpoint)
        headers = build_hf_headers(token=self.api.token)
        data = bytearray()
        with (
            hub_errors(f"downloading {filename} of {repo}@{sha[:8]}"),
            get_session().stream("GET", url, headers=headers) as response,
        ):
            if response.status_code >= 400:
                response.read()  # Hub errors are short JSON
                hf_raise_for_status(response)
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > cap:
                    raise CheckpointRejectedError(f"{filename} is over the {cap:,} bytes limit (download stopped)")
        return bytes(data)

    def download(self, repo: str, sha: str, files: list[str], dest: Path) -> Path:
        """Only ``files``, at exactly ``sha``, into ``dest`` (no shared cache, no symlinks)."""
        with hub_errors(f"downloading {repo}@{sha[:8]}"):
            self.api.snapshot_download(repo, revision=sha, allow_patterns=files, local_dir=dest)
        return dest

    def open_bot_prs(self, repo: str) -> list[BotPullRequest]:
        """The bot's own open pull requests on the repo, newest first."""
        found = []
        with hub_errors(f"listing pull requests of {repo}"):
            discussions = list(
                self.api.get_repo_discussions(
                    repo, author=self.bot_user, discussion_type="pull_request", discussion_status="open"
                )
            )
            for d in discussions:
                if d.author != self.bot_user or not d.is_pull_request or d.status != "open":
                    continue
                details = self.api.get_discussion_details(repo, d.num)
                first = details.events[0] if details.events else None
                match = MARKER_RE.match(getattr(first, "content", "") or "")  # first line only
                found.append(BotPullRequest(d.num, match.group(1) if match else None, d.url))
        return sorted(found, key=lambda pr: pr.num, reverse=True)

    def merged_bot_pr(self, repo: str, sha: str) -> int | None:
        """The number of the bot's merged PR whose merge commit is ``sha``, if any."""
        with hub_errors(f"listing pull requests of {repo}"):
            for d in self.api.get_repo_discussions(repo, author=self.bot_user, discussion_type="pull_request"):
                if d.author == self.bot_user and d.status == "merged":
                    details = self.api.get_discussion_details(repo, d.num)
                    if (details.merge_commit_oid or "").lower() == sha:
                        return d.num
        return None

    def history(self, repo: str, sha: str) -> set[str]:
        """Every commit id reachable from ``sha`` (itself included)."""
        with hub_errors(f"listing the history of {repo}@{sha[:8]}"):
            return {c.commit_id.lower() for c in self.api.list_repo_commits(repo, revision=sha)}

    def next_discussion_num(self, repo: str) -> int:
        """The number the next discussion or PR will most likely get (for the usage snippet)."""
        with hub_errors(f"listing discussions of {repo}"):
            return 1 + max((d.num for d in self.api.get_repo_discussions(repo)), default=0)

    def comment(self, repo: str, num: int, text: str) -> None:
        with hub_errors(f"commenting on #{num} of {repo}"):
            self.api.comment_discussion(repo, num, text)

    def open_pr(
        self, repo: str, sha: str, files: dict[str, Path | bytes], *, title: str, description: str
    ) -> OpenedPullRequest:
        """One commit on top of ``sha`` with ``files`` (repo path → local file), as a new PR."""
        operations = [
            CommitOperationAdd(path_in_repo=path, path_or_fileobj=local if isinstance(local, bytes) else str(local))
            for path, local in files.items()
        ]
        with hub_errors(f"opening a pull request on {repo}"):
            info = self.api.create_commit(
                repo,
                operations,
                commit_message=title,
                commit_description=description,
                create_pr=True,
                parent_commit=sha,
            )
        if info.pr_num is None:
            raise HubRefusedError(f"the Hub created commit {info.oid} on {repo} but no pull request")
        return OpenedPullRequest(
            info.pr_num, info.pr_url or f"{self.endpoint}/{repo}/discussions/{info.pr_num}", info.oid
        )

    def failure_discussions(self, repo: str, sha: str) -> list[BotDiscussion]:
        """The bot's failure discussions that are open or may name ``sha`` (by title), with the commit each names.

        Details (one request each) are read only for those: closed ones about other commits are skipped.
        """
        found = []
        with hub_errors(f"listing discussions of {repo}"):
            for d in self.api.get_repo_discussions(repo, author=self.bot_user, discussion_type="discussion"):
                if d.author != self.bot_user or d.is_pull_request:
                    continue
                if d.status != "open" and sha[:7] not in d.title:
                    continue
                details = self.api.get_discussion_details(repo, d.num)
                first = details.events[0] if details.events else None
                match = FAILURE_MARKER_RE.match(getattr(first, "content", "") or "")
                if match:
                    found.append(BotDiscussion(d.num, match.group(1), d.url, d.status))
        return found

    def open_discussion(self, repo: str, title: str, description: str) -> BotDiscussion:
        """A new discussion (never a pull request: it carries no files)."""
        with hub_errors(f"opening a discussion on {repo}"):
            d = self.api.create_discussion(repo, title, description=description, pull_request=False)
        match = FAILURE_MARKER_RE.match(description)
        return BotDiscussion(d.num, match.group(1) if match else None, d.url, d.status)

    def close_discussion(self, repo: str, num: int, comment: str) -> None:
        with hub_errors(f"closing discussion #{num} on {repo}"):
            self.api.change_discussion_status(repo, num, "closed", comment=comment)

    def supersede(self, repo: str, old: BotPullRequest, new_num: int, new_url: str) -> None:
        """Point the old PR to the new one, then close it."""
        with hub_errors(f"closing pull request #{old.num} on {repo}"):
            self.api.comment_discussion(repo, old.num, f"Superseded by #{new_num} ({new_url}) for a newer commit.")
            self.api.change_discussion_status(repo, old.num, "closed")
