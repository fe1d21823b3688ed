"""The models a Store uses, each loaded once: embedders, the reranker, budget tokenizers and
the chat model. One lock serialises model work (loading, embedding, counting, reranking):
fast tokenizers are not safe to share across threads, and AsyncStore runs calls in threads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from pgcontext import catalog
from pgcontext.arguments import check_text
from pgcontext.catalog import CollectionInfo
from pgcontext.config import Settings
from pgcontext.embed.base import Embedder
from pgcontext.embed.registry import load_embedder, resolve
from pgcontext.errors import LlmError, ModelLoadError, ModelMismatchError
from pgcontext.llm.answer import ChatModel
from pgcontext.llm.client import ChatClient
from pgcontext.llm.tokenizer import ContentCounter, TokenCounter, default_tokenizer, load_tokenizer
from pgcontext.retrieve.rerank import Reranker

log = logging.getLogger(__name__)


class Models:
    """Every model of one Store, loaded lazily; hub downloads only if the settings allow them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = threading.RLock()
        self._embedders: dict[str, Embedder] = {}
        self._reranker: Reranker | None = None
        self._tokenizers: dict[str, TokenCounter] = {}

    def embedder(self, model: str | None = None) -> Embedder:
        """The embedder for `model` (default: the settings' model)."""
        if model is not None:
            check_text(model, "model")
        key = model or self.settings.model
        with self.lock:
            name, location = resolve(key, self.settings.model)
            for known in (key, name, location):
                if known in self._embedders:
                    return self._embedders[known]
            log.info("loading embedding model %s from %s", name, location)
            embedder = load_embedder(
                key,
                self.settings.model,
                self.settings.batch_size,
                allow_hub=self.settings.allow_hub,
            )
            self.register_embedder(embedder)
            self._embedders[key] = embedder
            return embedder

    def register_embedder(self, embedder: Embedder) -> None:
        """Make a ready embedder known by its name and its location."""
        with self.lock:
            self._embedders[embedder.spec.name] = embedder
            self._embedders[embedder.spec.location] = embedder

    def collection_embedder(self, collection: CollectionInfo, model: str | None = None) -> Embedder:
        """The collection's own model; a different `model` is refused, naming both."""
        if model is not None:
            embedder = self.embedder(model)
        else:
            # By name first: a bundled model's folder moves between machines, its name does not.
            try:
                embedder = self.embedder(collection.model.name)
                catalog.require_model(collection, embedder.spec)
            except (ModelLoadError, ModelMismatchError):
                embedder = self.embedder(collection.model.location)
        catalog.require_model(collection, embedder.spec)
        return embedder

    def reranker(self) -> Reranker:
        """The cross-encoder `rerank=True` uses: the bundled one unless one was set."""
        with self.lock:
            if self._reranker is None:
                from pgcontext.retrieve.rerank import CrossEncoder

                self._reranker = CrossEncoder()
            return self._reranker

    def set_reranker(self, reranker: Reranker) -> None:
        with self.lock:
            self._reranker = reranker

    def tokenizer(
        self, spec: str | TokenCounter | None, collection: Callable[[], CollectionInfo]
    ) -> TokenCounter:
        """The budget's token counter: `spec` (a folder or hub name) loaded once, a ready
        counter as it is, or by default the bundled chat model's, else the embedder's."""
        if spec is not None and not isinstance(spec, str):
            return spec
        with self.lock:
            key = spec or ""
            if key in self._tokenizers:
                return self._tokenizers[key]
            if spec:
                counter: TokenCounter = load_tokenizer(spec, allow_hub=self.settings.allow_hub)
                self._tokenizers[key] = counter
                return counter
            info = collection()
            fallback = ContentCounter(
                info.model.name, lambda text: self.collection_embedder(info).count_tokens(text)
            )
            counter = default_tokenizer(self.settings.models_dir, fallback)
            if counter is not fallback:  # the fallback depends on the collection: not cached
                self._tokenizers[key] = counter
            return counter

    def chat_loader(self, model: ChatModel | None = None, *, local: bool = False) -> ChatLoader:
        """What loads the chat model: `model` itself, the bundled one (`local`), else the
        settings' endpoint. A missing endpoint is an error now, the load happens later."""
        if model is not None:
            return lambda: model
        if local:
            models_dir = self.settings.models_dir

            def load_local() -> ChatModel:
                from pgcontext.llm.local import LocalChat

                return LocalChat(models_dir)

            return load_local
        llm = self.settings.llm
        if llm is None:
            raise LlmError(
                "no chat model: set PGCONTEXT_LLM_URL (and PGCONTEXT_LLM_MODEL) to an "
                "OpenAI-compatible endpoint, or use the bundled model with local",
                parameter="local",
            )
        return lambda: ChatClient(llm)


ChatLoader = Callable[[], ChatModel]
