"""The simulated model's answer shaped as each API's response body."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from phantomex.devtools.llm_sim import behaviour
from phantomex.devtools.llm_sim.protocol import shaped, template, utc_now


@dataclass
class Reply:
    """One answer of the simulated model, before it is shaped for an API."""

    content: str | None = ""
    thinking: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    refusal: str | None = None
    load_ns: int = 0
    started: float = 0.0


def prompt_tokens(messages: list[Any]) -> int:
    """A token estimate of the prompt's messages."""
    text = "".join(str(m.get("content") or "") if isinstance(m, dict) else str(m) for m in messages)
    return behaviour.estimate_tokens(text) + 4 * len(messages)


def ollama_body(body: dict[str, Any], messages: list[Any], reply: Reply) -> dict[str, Any]:
    """``reply`` as Ollama's ``/api/chat`` answer."""
    content = reply.content if reply.content is not None else (reply.refusal or "")
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reply.thinking:
        message["thinking"] = reply.thinking
    if reply.tool_calls:
        calls = []
        for c in reply.tool_calls:
            args = c["arguments"]
            if isinstance(args, str):
                with contextlib.suppress(ValueError):
                    args = json.loads(args)
            calls.append({"function": {"name": c["name"], "arguments": args}})
        message["tool_calls"] = calls
    tokens_in = prompt_tokens(messages)
    tokens_out = behaviour.estimate_tokens(content + (reply.thinking or ""))
    total_ns = max(1, int((time.perf_counter() - reply.started) * 1e9))
    eval_ns = max(1, total_ns - reply.load_ns)
    return shaped(
        template("ollama_chat.json"),
        {
            "model": body["model"],
            "created_at": utc_now(),
            "message": message,
            "done_reason": reply.finish_reason or "stop",
            "done": True,
            "total_duration": total_ns,
            "load_duration": reply.load_ns,
            "prompt_eval_count": tokens_in,
            "prompt_eval_duration": eval_ns // 5,
            "eval_count": tokens_out,
            "eval_duration": eval_ns - eval_ns // 5,
        },
    )


def openai_body(
    body: dict[str, Any], messages: list[Any], reply: Reply, reasoning_field: str
) -> dict[str, Any]:
    """``reply`` as an OpenAI chat completion (reasoning under ``reasoning_field``)."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.content,
        "refusal": reply.refusal,
    }
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": c["id"],
                "type": "function",
                "function": {
                    "name": c["name"],
                    "arguments": c["arguments"]
                    if isinstance(c["arguments"], str)
                    else json.dumps(c["arguments"]),
                },
            }
            for c in reply.tool_calls
        ]
    if reply.thinking:
        message[reasoning_field] = reply.thinking
    finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
    tokens_in = prompt_tokens(messages)
    reasoning_tokens = behaviour.estimate_tokens(reply.thinking) if reply.thinking else 0
    tokens_out = (
        behaviour.estimate_tokens(
            (reply.content or "")
            + (reply.refusal or "")
            + "".join(json.dumps(c["arguments"]) for c in reply.tool_calls)
        )
        + reasoning_tokens
    )
    tmpl = template("openai_chat_completion.json")
    return shaped(
        tmpl,
        {
            "id": f"chatcmpl-{secrets.token_urlsafe(21)[:29]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
                "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
            },
            "system_fingerprint": "fp_phantomexsim",
        },
    )
