"""A local OpenAI-compatible endpoint for tests and benches: answers at once with its own name.

    python tests/openai_backend.py --port 8001 --name gpt-4-1106-preview

`POST /control {"mode": "ok" | "judge" | "error" | "slow", "delay_s": 5}` switches how it answers
(error: HTTP 500; slow: waits delay_s first, then answers as "ok"); `GET /stats` counts the
completion requests it received, refused ones included.

As a judge (mode "judge") it grades GSM8K-style answers the way MT-Bench's prompts ask: an answer
whose last number is the reference's final number (`#### n`) is rated `[[9]]`, any other `[[2]]`;
a pair is `[[A]]`, `[[B]]` or `[[C]]` (a tie) by the same rule. An answer containing
`garbage_marker` gets a reply without a verdict. `{"rate_limited": n, "retry_after_s": 1}` makes
the next n requests answer 429 with that Retry-After, in any mode.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route


_NUMBER = re.compile(r"-?\d[\d,]*\.?\d*")


def _between(text: str, start: str, end: str) -> str | None:
    if start not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0]


def _last_number(text: str | None) -> str | None:
    numbers = _NUMBER.findall(text or "")
    return numbers[-1].replace(",", "").rstrip(".") if numbers else None


def judge_verdict(prompt: str, garbage_marker: str | None) -> str:
    """A judge's reply to an MT-Bench single or pairwise prompt, by the GSM8K rule above."""
    reference = _between(prompt, "[The Start of Reference Answer]\n", "\n[The End of Reference Answer]")
    target = _last_number((reference or "").split("####")[-1])
    answers = [_between(prompt, f"[The Start of {who}'s Answer]\n", f"\n[The End of {who}'s Answer]") for who in ("Assistant", "Assistant A", "Assistant B")]
    if garbage_marker and any(garbage_marker in (a or "") for a in answers):
        return "Both attempts look reasonable to me, hard to say."
    right = [a is not None and target is not None and _last_number(a) == target for a in answers]
    if answers[0] is not None:
        return f"The answer is {'correct' if right[0] else 'wrong'}. Rating: [[{9 if right[0] else 2}]]"
    verdict = "C" if right[1] == right[2] else "A" if right[1] else "B"
    return f"Comparing both with the reference: [[{verdict}]]"


def make_app(name: str) -> Starlette:
    state = {"mode": "ok", "delay_s": 0.0, "requests": 0, "rate_limited": 0, "retry_after_s": 1, "garbage_marker": None}

    def completion(kind: str, body: dict, text: str) -> dict:
        choice = {"index": 0, "finish_reason": "stop"}
        choice.update({"message": {"role": "assistant", "content": text}} if kind == "chat.completion" else {"text": text, "logprobs": None})
        usage = {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}
        return {"id": f"cmpl-{state['requests']}", "object": kind, "created": int(time.time()), "model": name, "choices": [choice], "usage": usage}

    async def answer(request: Request, kind: str) -> object:
        body = await request.json()
        state["requests"] += 1
        if state["rate_limited"] > 0:
            state["rate_limited"] -= 1
            return JSONResponse({"error": {"message": "rate limited", "type": "rate_limit_error"}}, status_code=429,
                                headers={"Retry-After": str(state["retry_after_s"])})
        if state["mode"] == "error":
            return JSONResponse({"error": {"message": "backend down", "type": "server_error"}}, status_code=500)
        if state["mode"] == "slow":
            await asyncio.sleep(state["delay_s"])
        if state["mode"] == "judge":
            text = judge_verdict(body["messages"][-1]["content"], state["garbage_marker"])
        else:
            text = f"answer from {name} to model {body.get('model')}"
        if not body.get("stream"):
            return JSONResponse(completion(kind, body, text))

        async def events():
            for word in text.split(" "):
                chunk = {"id": "chunk", "object": "chat.completion.chunk", "created": int(time.time()), "model": name,
                         "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]}
                yield f"data: {json.dumps(chunk)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def chat(request: Request):
        return await answer(request, "chat.completion")

    async def text_completion(request: Request):
        return await answer(request, "text_completion")

    async def control(request: Request):
        state.update(await request.json())
        return JSONResponse({"mode": state["mode"]})

    async def stats(request: Request):
        return JSONResponse({"requests": state["requests"]})

    async def health(request: Request):
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/completions", text_completion, methods=["POST"]),
        Route("/control", control, methods=["POST"]),
        Route("/stats", stats),
        Route("/health", health),
    ])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    uvicorn.run(make_app(args.name), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
