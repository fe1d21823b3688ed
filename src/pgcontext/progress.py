"""Progress of long work: a live bar on a terminal, a log line every few seconds otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from pgcontext.ingest.report import IngestReport

log = logging.getLogger(__name__)


class IngestProgress:
    """Callable given to `Store.ingest(progress=...)`; call `close()` when done.

    Shows documents done (of the total, once known), chunks written, chunks/s and an ETA.
    """

    def __init__(self, *, every_seconds: float = 10.0) -> None:
        self._bar: Any = None
        self._every = every_seconds
        self._last = 0.0
        self._tty = sys.stderr.isatty()

    def __call__(self, report: IngestReport) -> None:
        rate = report.chunks_embedded / report.seconds if report.seconds else 0.0
        if self._tty:
            self._show_bar(report, rate)
            return
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            log.info("%s", _line(report, rate))

    def _show_bar(self, report: IngestReport, rate: float) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=report.expected_documents, unit="doc", dynamic_ncols=True, file=sys.stderr
            )
        self._bar.update(report.documents_seen - self._bar.n)
        self._bar.set_postfix(chunks=report.chunks_written, chunks_per_s=f"{rate:.0f}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _line(report: IngestReport, rate: float) -> str:
    done = report.documents_seen
    total = report.expected_documents
    of = f"/{total}" if total else ""
    eta = ""
    if total and done and report.seconds:
        remaining = report.seconds / done * max(total - done, 0)
        eta = f", ETA {remaining:.0f}s"
    return (
        f"{report.collection}: {done}{of} documents ({report.added} new, {report.updated} "
        f"updated, {report.unchanged} unchanged, {len(report.problems)} failed), "
        f"{report.chunks_written} chunks, {rate:.0f} chunks/s{eta}"
    )
