"""`AsyncStore`: the Store's retrieval and answering for asyncio applications.

Each call runs the synchronous Store in a worker thread (`asyncio.to_thread`): the
connection pool serves threads, the Store serialises model work (loading, embedding,
token counting, reranking) with a lock while database work runs concurrently, the event
loop never blocks, and there is one implementation to trust. An answer streams through
an asyncio queue as the chat model produces it; leaving the loop stops the generation.

    async with await AsyncStore.open() as store:
        result = await store.context("What is MVCC?", "pgdocs")
        async for piece in store.ask_stream("What is MVCC?", "pgdocs", local=True):
            print(piece, end="")
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

from pgcontext.config import Settings
from pgcontext.context.assemble import ContextResult
from pgcontext.llm.answer import Answer
from pgcontext.retrieve.hit import Hit
from pgcontext.store import Store

_END = object()


class AsyncStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    @classmethod
    async def open(
        cls,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        upgrade: bool | None = None,
    ) -> AsyncStore:
        return cls(await asyncio.to_thread(Store.open, url, settings=settings, upgrade=upgrade))

    async def close(self) -> None:
        await asyncio.to_thread(self.store.close)

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def search(self, collection: str, query: str, **kwargs: Any) -> list[Hit]:
        """`Store.search`, awaited."""
        return await asyncio.to_thread(self.store.search, collection, query, **kwargs)

    async def context(self, prompt: str, collection: str, **kwargs: Any) -> ContextResult:
        """`Store.context`, awaited."""
        return await asyncio.to_thread(self.store.context, prompt, collection, **kwargs)

    async def ask(self, prompt: str, collection: str, **kwargs: Any) -> Answer:
        """`Store.ask`, awaited."""
        return await asyncio.to_thread(self.store.ask, prompt, collection, **kwargs)

    async def ask_stream(self, prompt: str, collection: str, **kwargs: Any) -> AsyncIterator[str]:
        """The answer's pieces as the model produces them (`Store.ask_stream`'s arguments).

        Errors (a bad collection, an unreachable endpoint) are raised here, in the caller.
        Leaving the loop early stops reading: the worker stops at its next piece.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()

        def produce() -> None:
            try:
                for piece in self.store.ask_stream(prompt, collection, **kwargs):
                    if stop.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, piece)
            except BaseException as exc:  # handed to the awaiting caller
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _END)

        worker = asyncio.ensure_future(asyncio.to_thread(produce))
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield str(item)
        finally:
            stop.set()
            await worker
