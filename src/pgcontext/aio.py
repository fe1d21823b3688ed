"""`AsyncStore`: the Store's retrieval and answering for asyncio applications.

Each call runs the synchronous Store in a worker thread (`asyncio.to_thread`): the
connection pool serves threads, the Store serialises model work (loading, embedding,
token counting, reranking) with a lock while database work runs concurrently, the event
loop never blocks, and there is one implementation to trust. An answer streams through
an asyncio queue as the chat model produces it; leaving the loop stops the generation.
Each method takes exactly the parameters of the Store method of its name.

    async with await AsyncStore.open() as store:
        result = await store.context("What is MVCC?", collection="pgdocs")
        async for piece in store.ask_stream("What is MVCC?", collection="pgdocs", local=True):
            print(piece, end="")
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from pgcontext.config import Settings
from pgcontext.llm.answer import AnswerStream
from pgcontext.store import Store

P = ParamSpec("P")
R = TypeVar("R")
_END = object()


def _in_thread(
    method: Callable[Concatenate[Store, P], R],
) -> Callable[Concatenate[AsyncStore, P], Coroutine[Any, Any, R]]:
    """The Store method, awaited: the same parameters, run in a worker thread."""

    async def call(self: AsyncStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(method, self.store, *args, **kwargs)

    functools.update_wrapper(call, method)  # its name, docstring and signature
    return call


def _streamed(
    method: Callable[Concatenate[Store, P], AnswerStream],
) -> Callable[Concatenate[AsyncStore, P], AsyncIterator[str]]:
    """The answer's pieces as the model produces them (the Store method's parameters).

    Errors (a bad collection, an unreachable endpoint) are raised here, in the caller.
    Leaving the loop early stops reading: the worker stops at its next piece.
    """

    async def stream(self: AsyncStore, /, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()

        def produce() -> None:
            try:
                for piece in method(self.store, *args, **kwargs):
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

    functools.update_wrapper(stream, method)
    return stream


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
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    search = _in_thread(Store.search)
    context = _in_thread(Store.context)
    ask = _in_thread(Store.ask)
    ask_stream = _streamed(Store.ask_stream)
