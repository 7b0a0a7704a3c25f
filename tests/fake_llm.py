"""A real HTTP server on loopback that speaks OpenAI's chat-completions protocol, with scripted behaviours.

The behaviour is picked by the `model` field of each request, so one server serves every fault case.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GOOD = {
    "prompt": "A tabby cat turning its head slowly to the right, ears twitching slightly, camera static.",
    "negative_prompt": "blurry, distorted, flicker",
    "tags": ["static_camera"],
    "subject": "a tabby cat",
    "motion": "turning its head slowly to the right",
    "camera": "static",
}


def completion(content: str, finish_reason: str = "stop") -> dict:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


class FakeLLM(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict] = []
        self.headers_seen: list[dict] = []
        self.calls_by_model: dict[str, int] = {}
        #: model name -> the reply's content, for tests that need an answer of their own shape.
        self.scripted: dict[str, str] = {}
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> FakeLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    server: FakeLLM

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def reply(self, status: int, payload: dict, headers: dict | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def error(self, status: int, message: str, kind: str) -> None:
        self.reply(status, {"error": {"message": message, "type": kind, "code": kind}})

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length", 0))
        request = json.loads(self.rfile.read(length))
        self.server.requests.append(request)
        self.server.headers_seen.append({key.lower(): value for key, value in self.headers.items()})
        model = request.get("model", "")
        count = self.server.calls_by_model[model] = self.server.calls_by_model.get(model, 0) + 1
        behaviour = model.split(":")[0]
        if model in self.server.scripted:
            return self.reply(200, completion(self.server.scripted[model]))
        if behaviour == "slow":
            time.sleep(3)
            return self.reply(200, completion(json.dumps(GOOD)))
        if behaviour == "429":
            return self.error(429, "engine overloaded", "rate_limit_reached_error")
        if behaviour == "429-once" and count == 1:
            return self.error(429, "rate limited", "rate_limit_reached_error")
        if behaviour == "500":
            return self.error(500, "internal error", "server_error")
        if behaviour == "401":
            return self.error(401, "Invalid Authentication", "invalid_authentication_error")
        if behaviour == "403":
            return self.error(403, "Your account is suspended due to insufficient balance", "exceeded_current_quota_error")
        if behaviour == "filter":
            return self.error(400, "The request was rejected because it was considered high risk", "content_filter")
        if behaviour == "badjson":
            return self.reply(200, completion("Sure! Here is a great prompt: a cat turns its head."))
        if behaviour == "fenced":
            return self.reply(200, completion("```json\n" + json.dumps(GOOD) + "\n```"))
        if behaviour == "unknowntags":
            return self.reply(200, completion(json.dumps({**GOOD, "tags": ["pan_left", "spin_wildly", "Zoom_In"]})))
        if behaviour == "dropsubject":
            return self.reply(200, completion(json.dumps({**GOOD, "prompt": "A dog running across a sunny field.", "subject": "a dog"})))
        if behaviour == "chinese":
            return self.reply(200, completion(json.dumps({**GOOD, "prompt": "一只猫慢慢转头。"})))
        if behaviour == "long":
            return self.reply(200, completion(json.dumps({**GOOD, "prompt": "A cat turning its head " + "very slowly and gently " * 30})))
        if behaviour == "empty":
            return self.reply(200, completion(""))
        return self.reply(200, completion(json.dumps(GOOD)))
