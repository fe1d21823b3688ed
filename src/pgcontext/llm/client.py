"""An OpenAI-compatible `/v1/chat/completions` client (stdlib HTTP, streaming by SSE)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

from pgcontext.config import LlmSettings, redact_url
from pgcontext.errors import LlmError

TIMEOUT_S = 120


def completions_url(url: str) -> str:
    """Accept the server root, its /v1, or the full endpoint."""
    url = url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if url.endswith("/v1"):
        return url + "/chat/completions"
    return url + "/v1/chat/completions"


class ChatClient:
    """Sends chat messages to one endpoint and model; `stream` yields the answer's text."""

    def __init__(self, settings: LlmSettings, *, timeout: float = TIMEOUT_S) -> None:
        self.url = completions_url(settings.url)
        self.model = settings.model
        self.name = f"{settings.model} at {redact_url(self.url)}"
        self._key = settings.api_key
        self._timeout = timeout

    def stream(
        self, messages: Sequence[dict[str, str]], max_tokens: int, *, temperature: float = 0.0
    ) -> Iterator[str]:
        body = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        with self._post(body) as response:
            if "text/event-stream" not in response.headers.get("Content-Type", ""):
                # A server that ignores "stream" answers with one JSON object.
                yield _message_content(self._json(response.read()))
                return
            for raw in response:
                line = raw.decode("utf-8").strip()
                if not line.startswith("data:"):
                    continue  # blank separators, comments, "event:" lines
                data = line[len("data:") :].strip()
                if data == "[DONE]":
                    return
                event = self._json(data.encode())
                if "error" in event:
                    raise LlmError(f"{self.name}: {_error_text(event)}")
                for choice in event.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        yield piece

    def complete(self, messages: Sequence[dict[str, str]], max_tokens: int) -> str:
        return "".join(self.stream(messages, max_tokens))

    def _post(self, body: dict[str, Any]) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            return urllib.request.urlopen(request, timeout=self._timeout)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            try:
                detail = _error_text(json.loads(detail))
            except (ValueError, AttributeError):
                detail = detail.strip()[:300]
            raise LlmError(f"{self.name} answered HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise LlmError(f"cannot reach {self.name}: {reason}") from None

    def _json(self, raw: bytes) -> dict[str, Any]:
        try:
            value = json.loads(raw)
        except ValueError:
            raise LlmError(f"{self.name} sent something that is not JSON: {raw[:200]!r}") from None
        if not isinstance(value, dict):
            raise LlmError(f"{self.name} sent JSON that is not an object: {raw[:200]!r}")
        return value


def _message_content(reply: dict[str, Any]) -> str:
    try:
        return str(reply["choices"][0]["message"]["content"] or "")
    except (KeyError, IndexError, TypeError):
        raise LlmError(f"the reply has no choices[0].message.content: {reply}") from None


def _error_text(payload: dict[str, Any]) -> str:
    error = payload.get("error", payload)
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)
