"""What SIGINT and SIGTERM do while a command runs."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import click

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _on_signals(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """`handler` for SIGINT and SIGTERM while the block runs; the previous ones after."""
    previous = {sig: signal.getsignal(sig) for sig in _STOP_SIGNALS}
    for sig in _STOP_SIGNALS:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, restored in previous.items():
            signal.signal(sig, restored)


def stop_on_signals(stop: Callable[[], None]) -> AbstractContextManager[None]:
    """First SIGINT/SIGTERM: `stop()` (finish the job in hand); a second one aborts."""

    def handle(signum: int, frame: Any) -> None:
        click.echo(f"signal {signum}: finishing the job in hand (again to abort)", err=True)
        stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    return _on_signals(handle)


def interrupt_on_signals() -> AbstractContextManager[None]:
    """SIGTERM raises KeyboardInterrupt like SIGINT, so an export removes its temporary
    file; signals after the first are ignored until that clean-up is done."""

    def interrupt(signum: int, frame: Any) -> None:
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    return _on_signals(interrupt)
