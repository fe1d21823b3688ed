"""The embedder interface: embed documents, embed a query, say exactly which model it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from pgcontext.tokens import TokenSpans

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ModelSpec:
    """The identity of an embedding function, as recorded in pgcontext.embedding_model.

    Two embeddings are comparable only if the same function made them: `revision` is a
    fingerprint of the weights and settings, so the same name with other weights differs.
    """

    name: str
    revision: str
    dimensions: int
    normalized: bool
    max_tokens: int
    """The most tokens of text one input may hold (special tokens excluded)."""
    location: str
    """Where it was loaded from: a local folder or a model name."""

    def same_function(self, other: ModelSpec) -> bool:
        return (self.revision, self.dimensions) == (other.revision, other.dimensions)

    def describe(self) -> str:
        return f"{self.name} (revision {self.revision}, {self.dimensions} dimensions)"


class Embedder(TokenSpans, Protocol):
    """What ingestion and search need from an embedding model; its `token_spans` are
    what chunking cuts by."""

    @property
    def spec(self) -> ModelSpec: ...

    def embed_documents(self, texts: list[str]) -> Vectors:
        """One row per text; texts must fit `spec.max_tokens` (chunking guarantees it)."""
        ...

    def embed_query(self, text: str) -> Vectors:
        """A single row for a search query (some models prefix queries differently)."""
        ...

    def count_tokens(self, text: str) -> int:
        """How many of the model's tokens `text` holds, special tokens excluded."""
        ...
