"""An OpenAI-compatible `/v1/chat/completions` client (stdlib HTTP, streaming by SSE)."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pgcontext.config import LlmSettings
from pgcontext.errors import LlmError
from pgcontext.redact import clip, redact_secrets, redact_url, url_secrets

TIMEOUT_S = 120


def completions_url(url: str) -> str:
    """Accept the server root, its /v1, or the full endpoint; a query string is kept."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if not path.endswith("/chat/completions"):
        path += "/chat/completions" if path.endswith("/v1") else "/v1/chat/completions"
    return urlunsplit(parts._replace(path=path))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would re-send the API key to wherever it points: refuse it instead."""

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> None:
        raise urllib.error.HTTPError(
            req.full_url,
            code,
            f"redirected to {redact_url(newurl)}; set that URL instead",
            headers,
            fp,
        )


_OPENER = urllib.request.build_opener(_NoRedirects)


class ChatClient:
    """Sends chat messages to one endpoint and model; `stream` yields the answer's text."""

    def __init__(self, settings: LlmSettings, *, timeout: float = TIMEOUT_S) -> None:
        self.url = completions_url(settings.url)
        self.model = settings.model
        self.name = f"{settings.model} at {redact_url(self.url)}"
        self._key = settings.api_key
        self._timeout = timeout
        # An endpoint may echo the Authorization header or the URL in its error body.
        self._secrets = [settings.api_key, *url_secrets(settings.url)]

    def stream(
        self, messages: Sequence[dict[str, str]], max_tokens: int, *, temperature: float = 0.0
    ) -> Iterator[str]:
        try:
            yield from self._stream(messages, max_tokens, temperature)
        except LlmError as exc:
            raise LlmError(redact_secrets(str(exc), self._secrets)) from None

    def _stream(
        self, messages: Sequence[dict[str, str]], max_tokens: int, temperature: float
    ) -> Iterator[str]:
        body = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        with self._post(body) as response:
            try:
                if "text/event-stream" not in response.headers.get("Content-Type", ""):
                    # A server that ignores "stream" answers with one JSON object.
                    yield _message_content(self._json(response.read()))
                    return
                yield from self._events(response)
            except (OSError, http.client.HTTPException, UnicodeDecodeError) as exc:
                raise LlmError(f"{self.name}: the answer broke off: {exc!r}") from None

    def _events(self, response: Any) -> Iterator[str]:
        """The content pieces of a server-sent event stream, up to `data: [DONE]`."""
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
            choices = event.get("choices")
            for choice in choices if isinstance(choices, list) else []:
                delta = choice.get("delta") if isinstance(choice, dict) else None
                piece = delta.get("content") if isinstance(delta, dict) else None
                if isinstance(piece, str) and piece:
                    yield piece

    def _post(self, body: dict[str, Any]) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            return _OPENER.open(request, timeout=self._timeout)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            try:
                detail = _error_text(json.loads(detail))
            except (ValueError, AttributeError):
                # Redacted before the cut: a cut key would leave its start unmasked.
                detail = clip(detail.strip(), 300, self._secrets)
            raise LlmError(
                f"{self.name} answered HTTP {exc.code}: {detail or exc.reason}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise LlmError(f"cannot reach {self.name}: {reason}") from None

    def _json(self, raw: bytes) -> dict[str, Any]:
        try:
            value = json.loads(raw)
        except ValueError:
            raise LlmError(
                f"{self.name} sent something that is not JSON: {self._clip(raw)!r}"
            ) from None
        if not isinstance(value, dict):
            raise LlmError(f"{self.name} sent JSON that is not an object: {self._clip(raw)!r}")
        return value

    def _clip(self, raw: bytes) -> str:
        """The start of what the server sent, for an error: redacted, then cut."""
        return clip(raw.decode("utf-8", "replace"), 200, self._secrets)


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
