"""The HTTP request of a planned chat completion: URL path, JSON body, headers. Pure."""

from __future__ import annotations

import json
from typing import Any

from dynamo_tune.workload.hint_fields import hint_fields
from dynamo_tune.workload.hints import PrefixHints
from dynamo_tune.workload.plan import PlannedRequest

CHAT_PATH = "/v1/chat/completions"
BASE_HEADERS = {"content-type": "application/json", "accept": "text/event-stream"}


def chat_body(
    request: PlannedRequest, model: str, nvext: dict[str, Any] | None, ignore_eos: bool
) -> dict[str, Any]:
    """The streaming chat-completions body (usage requested in the last chunk)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "max_tokens": request.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if ignore_eos:
        body["ignore_eos"] = True
    if nvext is not None:
        body["nvext"] = nvext
    return body


def chat_request(
    request: PlannedRequest, model: str, hints: PrefixHints, run_id: str, ignore_eos: bool
) -> tuple[bytes, dict[str, str]]:
    """(encoded body, headers) of `request` with `hints` applied."""
    hint_headers, nvext = hint_fields(hints, request, run_id)
    body = json.dumps(chat_body(request, model, nvext, ignore_eos), separators=(",", ":"))
    return body.encode(), {**BASE_HEADERS, **hint_headers}
