"""Payload parsing and the accept/ignore filter, on payload shapes the Hub sends."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.web.payloads import Accepted, HubWebhookPayload, Ignored, decide
from tests.fakes import hub_webhooks

SHA = "a" * 40


def parse(data: dict) -> HubWebhookPayload:
    return HubWebhookPayload.model_validate(data)


def test_push_to_main_is_accepted() -> None:
    payload = parse(hub_webhooks.repo_update_payload("alice/tiny", new_sha=SHA, old_sha="b" * 40))
    assert decide(payload, watched_branch="main") == Accepted("alice/tiny", SHA)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ref": "refs/pr/3"}, "pull request ref"),
        ({"ref": "refs/heads/dev"}, "not updated"),
        ({"new_sha": "0" * 40}, "deleted"),
        ({"repo_type": "dataset"}, "not a model repo"),
        ({"repo_type": "space"}, "not a model repo"),
    ],
)
def test_ignored_pushes(change: dict, reason: str) -> None:
    kwargs = {"new_sha": SHA, **change}
    payload = parse(hub_webhooks.repo_update_payload("alice/tiny", **kwargs))
    decision = decide(payload, watched_branch="main")
    assert isinstance(decision, Ignored)
    assert reason in decision.reason


def test_watched_branch_is_configurable() -> None:
    payload = parse(hub_webhooks.repo_update_payload("alice/tiny", new_sha=SHA, ref="refs/heads/dev"))
    assert decide(payload, watched_branch="dev") == Accepted("alice/tiny", SHA)


def test_discussion_events_are_ignored() -> None:
    data = hub_webhooks.discussion_payload(
        "alice/tiny", num=1, title="t", author="bob", is_pull_request=True, status="open"
    )
    decision = decide(parse(data), watched_branch="main")
    assert isinstance(decision, Ignored) and "scope discussion" in decision.reason


def test_delete_and_other_scopes_are_ignored() -> None:
    data = hub_webhooks.repo_update_payload("alice/tiny", new_sha=SHA)
    data["event"] = {"action": "delete", "scope": "repo"}
    assert isinstance(decide(parse(data), watched_branch="main"), Ignored)
    data["event"] = {"action": "delete", "scope": "repo.content"}
    assert decide(parse(data), watched_branch="main") == Ignored("delete event")
    data["event"] = {"action": "update", "scope": "repo.config"}
    assert "repo.config" in decide(parse(data), watched_branch="main").reason  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.pop("event"),
        lambda d: d["event"].update(action="explode"),
        lambda d: d["webhook"].update(version=2),
        lambda d: d["repo"].update(type="bucket"),
        lambda d: d["repo"].pop("name"),
        lambda d: d.update(updatedRefs="main"),
    ],
)
def test_malformed_payloads_fail_validation(breakage) -> None:
    data = hub_webhooks.repo_update_payload("alice/tiny", new_sha=SHA)
    breakage(data)
    with pytest.raises(ValidationError):
        parse(data)


def test_head_sha_is_used_without_updated_refs() -> None:
    data = hub_webhooks.repo_update_payload("alice/tiny", new_sha=SHA)
    del data["updatedRefs"]
    assert decide(parse(data), watched_branch="main") == Accepted("alice/tiny", SHA)
