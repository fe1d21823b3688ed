"""A deterministic embedder for tests of logic that does not depend on meaning.

Each word hashes to a fixed random direction; a text's vector is the normalised sum of its
words' directions, so texts sharing words are near each other. No model, no torch.
"""

from __future__ import annotations

import hashlib
import os
import re
import time

import numpy as np

from pgcontext.embed.base import ModelSpec, Vectors

_WORD = re.compile(r"\w+|[^\w\s]")


class FakeEmbedder:
    def __init__(
        self,
        dimensions: int = 16,
        max_tokens: int = 64,
        name: str = "fake",
        location: str | None = None,
    ) -> None:
        self._spec = ModelSpec(
            name=name,
            revision=f"fake-{dimensions}-{max_tokens}",
            dimensions=dimensions,
            normalized=True,
            max_tokens=max_tokens,
            location=location or f"fake:{name}",
        )
        self.calls: list[list[str]] = []
        self.fail_next = 0
        self.refuse: str | None = None
        """A word the model fails on: any call with a text holding it raises."""

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    def _word_vector(self, word: str) -> Vectors:
        seed = int.from_bytes(hashlib.sha256(word.lower().encode()).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(self._spec.dimensions).astype(np.float32)

    def _embed(self, text: str) -> Vectors:
        total = np.zeros(self._spec.dimensions, dtype=np.float32)
        for word in _WORD.findall(text):
            total += self._word_vector(word)
        norm = float(np.linalg.norm(total))
        return total / norm if norm else total + 1.0 / np.sqrt(self._spec.dimensions)

    def embed_documents(self, texts: list[str]) -> Vectors:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("fake embedder failure")
        if self.refuse is not None and any(self.refuse in text for text in texts):
            raise ValueError(f"fake embedder refuses {self.refuse!r}")
        self.calls.append(list(texts))
        if not texts:
            return np.zeros((0, self._spec.dimensions), dtype=np.float32)
        return np.stack([self._embed(t) for t in texts])

    def embed_query(self, text: str) -> Vectors:
        return self._embed(text).reshape(1, -1)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _WORD.finditer(text)]

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text))


PLUGIN = "python:tests.support.fake_embedder:from_env"


class SlowFakeEmbedder(FakeEmbedder):
    """The fake with a delay per batch, for tests that kill or race worker processes."""

    def __init__(self, delay: float) -> None:
        super().__init__(location=PLUGIN)
        self.delay = delay

    def embed_documents(self, texts: list[str]) -> Vectors:
        time.sleep(self.delay)
        return super().embed_documents(texts)


def from_env() -> FakeEmbedder:
    """Factory for `PGCONTEXT_MODEL=python:tests.support.fake_embedder:from_env`."""
    return SlowFakeEmbedder(float(os.environ.get("FAKE_EMBED_DELAY", "0")))
