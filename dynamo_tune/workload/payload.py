"""The HTTP request of a planned request: URL path, JSON body, headers. Pure.

A request is a streamed chat completion (`/v1/chat/completions`, `messages`), or, when the plan
says `raw_prompt`, a streamed completion (`/v1/completions`, `prompt`: the exact tokens, no chat
template). Both ask for usage in the last chunk and carry the same hints.
"""

from __future__ import annotations

import json
from typing import Any

from dynamo_tune.workload.hint_fields import hint_fields
from dynamo_tune.workload.hints import PrefixHints
from dynamo_tune.workload.plan import PlannedRequest

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
BASE_HEADERS = {"content-type": "application/json", "accept": "text/event-stream"}


def request_path(request: PlannedRequest) -> str:
    """The frontend path `request` goes to: completions for a raw prompt, else chat."""
    return COMPLETIONS_PATH if request.raw_prompt else CHAT_PATH


def request_body(
    request: PlannedRequest, model: str, nvext: dict[str, Any] | None, ignore_eos: bool
) -> dict[str, Any]:
    """The streaming body (usage requested in the last chunk): chat, or completion of a raw
    prompt."""
    body: dict[str, Any] = {"model": model}
    if request.raw_prompt:
        body["prompt"] = request.prompt_text
    else:
        body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
    body |= {
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
    """(encoded body, headers) of `request` with `hints` applied; send it to
    `request_path(request)`."""
    hint_headers, nvext = hint_fields(hints, request, run_id)
    body = json.dumps(request_body(request, model, nvext, ignore_eos), separators=(",", ":"))
    return body.encode(), {**BASE_HEADERS, **hint_headers}
