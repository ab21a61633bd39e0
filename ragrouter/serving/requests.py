"""What the gateway reads of a request, checked: every refusal names the request field.

What is routed:
- chat completions: the last `user` message (text parts joined), the question being answered
  now; system preambles and earlier turns are not routed on, as RouteLLM's server does;
- completions: the prompt;
- a prompt longer than `limits.max_prompt_chars` is routed on its last characters (the
  question comes last, after few-shot examples or a preamble) or refused, as configured;
  the encoder then keeps the tail of what it is given (`encoder.keep: tail`).

The cost target per request: `model: "router-<name>-<fraction>"` (e.g. `router-ragrouter-0.3`
sends 30% of traffic to the strong model) or `"router-<name>-t<threshold>"` (a score
threshold, as RouteLLM's `router-mf-0.116`); any other model name keeps the gateway's target.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ragrouter.serving.config import LimitsConfig

_ROUTER_MODEL = re.compile(r"^router-(?P<name>.+)-(?P<kind>t?)(?P<value>\d*\.?\d+(?:e-?\d+)?)$")


class RequestError(Exception):
    """A request the gateway refuses: HTTP status, message, and the field at fault."""

    def __init__(self, status: int, message: str, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


@dataclass(frozen=True)
class CostChoice:
    """One request's cost target: a strong-call fraction, a score threshold, or the default (both None)."""

    fraction: float | None = None
    threshold: float | None = None


def json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RequestError(400, f"the body is not valid JSON ({error.__class__.__name__} at position {getattr(error, 'pos', 0)})") from None
    if not isinstance(body, dict):
        raise RequestError(400, f"the body must be a JSON object, got {_kind(body)}")
    return body


def cost_choice(body: dict[str, Any]) -> CostChoice:
    """From `model` (chat/completions) or `strong_fraction` / `threshold` (/route)."""
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestError(422, f"model: must be a string, got {_kind(model)}", "model")
    if isinstance(model, str) and model.startswith("router-") and (match := _ROUTER_MODEL.match(model)):
        value = float(match["value"])
        if match["kind"] == "t":
            return CostChoice(threshold=value)
        return CostChoice(fraction=_fraction(value, "model"))
    fraction, threshold = body.get("strong_fraction"), body.get("threshold")
    if fraction is not None and threshold is not None:
        raise RequestError(422, "give strong_fraction or threshold, not both", "threshold")
    if threshold is not None:
        return CostChoice(threshold=_number(threshold, "threshold"))
    if fraction is not None:
        return CostChoice(fraction=_fraction(_number(fraction, "strong_fraction"), "strong_fraction"))
    return CostChoice()


def routed_chat_prompt(body: dict[str, Any], limits: LimitsConfig) -> str:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(422, f"messages: must be a non-empty list of messages, got {_kind(messages)}", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RequestError(422, f"messages[{i}]: must be an object with a string role", f"messages[{i}]")
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    if not users:
        raise RequestError(422, "messages: no user message to route on", "messages")
    i = users[-1]
    return _within_limits(_text(messages[i].get("content"), f"messages[{i}].content"), f"messages[{i}].content", limits)


def routed_completion_prompt(body: dict[str, Any], limits: LimitsConfig) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise RequestError(422, f"prompt: must be a string (or a list of one), got {_kind(prompt)}", "prompt")
    return _within_limits(prompt, "prompt", limits)


def routed_prompts(body: dict[str, Any], limits: LimitsConfig) -> list[str]:
    """`/route`: `prompts` (a list of strings) or `prompt` (one string)."""
    if "prompts" in body and "prompt" in body:
        raise RequestError(422, "give prompts or prompt, not both", "prompt")
    if "prompt" in body:
        if not isinstance(body["prompt"], str):
            raise RequestError(422, f"prompt: must be a string, got {_kind(body['prompt'])}", "prompt")
        return [_within_limits(body["prompt"], "prompt", limits)]
    prompts = body.get("prompts")
    if not isinstance(prompts, list) or not prompts:
        raise RequestError(422, f"prompts: must be a non-empty list of strings, got {_kind(prompts)}", "prompts")
    if len(prompts) > limits.max_batch:
        raise RequestError(413, f"prompts: {len(prompts)} prompts in one request; at most {limits.max_batch}", "prompts")
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise RequestError(422, f"prompts[{i}]: must be a string, got {_kind(prompt)}", f"prompts[{i}]")
    return [_within_limits(p, f"prompts[{i}]", limits) for i, p in enumerate(prompts)]


def stream_requested(body: dict[str, Any]) -> bool:
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError(422, f"stream: must be true or false, got {_kind(stream)}", "stream")
    return stream


def _text(content: Any, field: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: the text ones are routed on
        texts = [part.get("text") for part in content if isinstance(part, dict) and part.get("type") == "text"]
        if texts and all(isinstance(t, str) for t in texts):
            return "\n".join(texts)
    raise RequestError(422, f"{field}: must be a string or a list of text parts, got {_kind(content)}", field)


def _within_limits(prompt: str, field: str, limits: LimitsConfig) -> str:
    if not prompt.strip():
        raise RequestError(422, f"{field}: empty prompt", field)
    if len(prompt) <= limits.max_prompt_chars:
        return prompt
    if limits.long_prompts == "reject":
        raise RequestError(413, f"{field}: {len(prompt)} characters; at most {limits.max_prompt_chars}", field)
    return prompt[-limits.max_prompt_chars :]


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(422, f"{field}: must be a number, got {_kind(value)}", field)
    return float(value)


def _fraction(value: float, field: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise RequestError(422, f"{field}: a strong-call fraction must be in [0, 1], got {value:g}", field)
    return value


def _kind(value: Any) -> str:
    """A value's JSON type, never the value itself (error bodies do not echo input)."""
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array", dict: "an object"}.get(type(value), type(value).__name__)
