"""A local OpenAI-compatible endpoint for tests and benches: answers at once with its own name.

    python tests/openai_backend.py --port 8001 --name gpt-4-1106-preview

`POST /control {"mode": "ok" | "error" | "slow", "delay_s": 5}` switches how it answers
(error: HTTP 500; slow: waits delay_s first); `GET /stats` counts the completions it served.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route


def make_app(name: str) -> Starlette:
    state = {"mode": "ok", "delay_s": 0.0, "requests": 0}

    def completion(kind: str, body: dict, text: str) -> dict:
        choice = {"index": 0, "finish_reason": "stop"}
        choice.update({"message": {"role": "assistant", "content": text}} if kind == "chat.completion" else {"text": text, "logprobs": None})
        usage = {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}
        return {"id": f"cmpl-{state['requests']}", "object": kind, "created": int(time.time()), "model": name, "choices": [choice], "usage": usage}

    async def answer(request: Request, kind: str) -> object:
        body = await request.json()
        state["requests"] += 1
        if state["mode"] == "error":
            return JSONResponse({"error": {"message": "backend down", "type": "server_error"}}, status_code=500)
        if state["mode"] == "slow":
            await asyncio.sleep(state["delay_s"])
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
