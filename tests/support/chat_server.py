"""A chat-completions HTTP server on loopback, scripted by tests (it speaks the OpenAI
protocol's ``POST /v1/chat/completions``; nothing leaves the machine).

Each request takes the next scripted step: ``("ok", text)``, ``("status", code)``,
``("sleep", seconds)``, ``("raw", body)`` (a 200 whose body is those bytes, as JSON, or
``(content_type, body)``); when the script runs out it answers with ``default(messages)``,
or, where the server was given ``fixed`` (a raw step's value), with that.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ChatServer:
    def __init__(self, default: Callable[[list[dict[str, str]]], str],
                 fixed: bytes | tuple[str, bytes] | None = None) -> None:
        self.script: list[tuple[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.default = default
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    step = server.script.pop(0) if server.script else ("raw", fixed) if fixed else ("ok", None)
                kind, value = step
                if kind == "sleep":
                    time.sleep(value)
                    kind, value = "ok", None
                if kind == "raw":
                    content_type, value = value if isinstance(value, tuple) else ("application/json", value)
                    self.send_response(200)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(value)))
                    self.end_headers()
                    self.wfile.write(value)
                    return
                if kind == "status":
                    self.send_response(value)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(json.dumps({"error": {"message": f"scripted {value}"}}).encode())
                    return
                text = server.default(body["messages"]) if value is None else value
                payload = {
                    "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", "test"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": len(json.dumps(body["messages"])) // 4,
                              "completion_tokens": len(text) // 4, "total_tokens": 0},
                }
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
