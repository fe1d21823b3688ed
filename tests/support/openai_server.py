"""A small OpenAI-compatible /v1/chat/completions server on loopback, for real HTTP tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Behaviour:
    # ok | json_only | unauthorized | plain_500 | error_midstream | redirect
    # | echo_auth (401 quoting the Authorization header) | echo_auth_midstream
    # | echo_cut (401 text cutting the header near our 300-character cut) | echo_not_json
    # (an event that is no JSON, likewise near 200) | echo_not_object | echo_lower_midstream
    mode: str = "ok"
    pieces: tuple[str, ...] = ("MVCC keeps ", "old row versions ", "[1].")
    requests: list[dict[str, Any]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    behaviour: Behaviour

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.behaviour.requests.append(
            {"path": self.path, "body": body, "authorization": self.headers.get("Authorization")}
        )
        mode = self.behaviour.mode
        if mode == "redirect":
            self.send_response(307)
            self.send_header("Location", "http://127.0.0.1:9/steal")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path.split("?")[0] != "/v1/chat/completions":
            self._send(404, "application/json", b'{"error": {"message": "no such route"}}')
        elif mode == "unauthorized":
            self._send(401, "application/json", b'{"error": {"message": "invalid api key"}}')
        elif mode == "echo_auth":
            echo = {"error": {"message": f"rejected {self.headers.get('Authorization')}"}}
            self._send(401, "application/json", json.dumps(echo).encode())
        elif mode == "echo_cut":
            text = "x" * 268 + f"Authorization: {self.headers.get('Authorization')}"
            self._send(401, "text/plain", text.encode())
        elif mode == "echo_not_object":
            echo = ["x" * 180 + str(self.headers.get("Authorization"))]
            self._send(200, "application/json", json.dumps(echo).encode())
        elif mode == "plain_500":
            self._send(500, "text/plain", b"upstream exploded")
        elif body.get("stream") and mode != "json_only":
            self._stream(body)
        else:
            reply = {"choices": [{"message": {"role": "assistant", "content": self._text()}}]}
            self._send(200, "application/json", json.dumps(reply).encode())

    def _text(self) -> str:
        return "".join(self.behaviour.pieces)

    def _stream(self, body: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.end_headers()
        for piece in self.behaviour.pieces:
            event = {"choices": [{"index": 0, "delta": {"content": piece}}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        if self.behaviour.mode == "error_midstream":
            self.wfile.write(b'data: {"error": {"message": "model overloaded"}}\n\n')
        if self.behaviour.mode == "echo_not_json":
            self.wfile.write(f"data: {'y' * 180}{self.headers.get('Authorization')}\n\n".encode())
        if self.behaviour.mode == "echo_lower_midstream":
            echo = {"error": {"message": f"bad {str(self.headers.get('Authorization')).lower()}"}}
            self.wfile.write(f"data: {json.dumps(echo)}\n\n".encode())
        if self.behaviour.mode == "echo_auth_midstream":
            echo = {"error": {"message": f"quota of {self.headers.get('Authorization')}"}}
            self.wfile.write(f"data: {json.dumps(echo)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def _send(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def openai_server() -> Iterator[tuple[str, Behaviour]]:
    """(base URL, behaviour): change `behaviour.mode` to make the server misbehave."""
    behaviour = Behaviour()
    handler = type("Handler", (_Handler,), {"behaviour": behaviour})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", behaviour
    finally:
        server.shutdown()
        server.server_close()
