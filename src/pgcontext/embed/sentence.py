"""The sentence-transformers embedder: loads once per process, embeds in batches."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from pgcontext.embed.base import ModelSpec, Vectors
from pgcontext.errors import ModelLoadError

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def cached_embedder(
    name: str, location: str, batch_size: int, *, allow_hub: bool = False
) -> SentenceTransformerEmbedder:
    """One loaded model per process and location: loading takes seconds, embedding doesn't."""
    return SentenceTransformerEmbedder(name, location, batch_size=batch_size, allow_hub=allow_hub)


class SentenceTransformerEmbedder:
    """An `Embedder` over any sentence-transformers model (local folder or hub name)."""

    def __init__(
        self, name: str, location: str, *, batch_size: int = 64, allow_hub: bool = False
    ) -> None:
        self._model = _load(location, allow_hub)
        self._tokenizer: Any = self._model.tokenizer
        self.batch_size = batch_size
        special = int(self._tokenizer.num_special_tokens_to_add(pair=False))
        dims = getattr(
            self._model, "get_embedding_dimension", self._model.get_sentence_embedding_dimension
        )()
        if not dims:
            raise ModelLoadError(f"model {name!r} at {location} does not report its dimensions")
        self._spec = ModelSpec(
            name=name,
            revision=_fingerprint(self._model),
            dimensions=int(dims),
            normalized=True,
            max_tokens=int(self._model.max_seq_length) - special,
            location=location,
        )

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    def embed_documents(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._spec.dimensions), dtype=np.float32)
        vectors = self._model.encode_document(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> Vectors:
        vectors = self._model.encode_query(
            [text], convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        encoded = self._tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )
        return [(int(a), int(b)) for a, b in encoded["offset_mapping"]]

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def _load(location: str, allow_hub: bool) -> Any:
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # no bar per start

    local = Path(location).is_dir()
    try:
        # Without hub downloads a hub name is read from the local cache only.
        return SentenceTransformer(location, device="cpu", local_files_only=local or not allow_hub)
    except Exception as exc:  # hub errors, missing files, bad configs: all mean "cannot load"
        hint = (
            ""
            if local or allow_hub
            else " (no such folder; downloading from a hub is off unless PGCONTEXT_ALLOW_HUB=1)"
        )
        raise ModelLoadError(f"cannot load embedding model {location!r}{hint}: {exc}") from exc


def _fingerprint(model: Any) -> str:
    """A hash of the weights and the settings that change the output: the model's identity."""
    digest = hashlib.sha256()
    settings = {
        "max_seq_length": model.max_seq_length,
        "modules": [type(m).__name__ for m in model],
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return "sha256:" + digest.hexdigest()[:16]
