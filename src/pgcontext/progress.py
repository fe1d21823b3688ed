"""Progress of long work: a live bar on a terminal, a log line every few seconds otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from pgcontext.ingest.pipeline import IngestReport

log = logging.getLogger(__name__)


class IngestProgress:
    """Callable given to `Store.ingest(progress=...)`; call `close()` when done."""

    def __init__(self, *, total_documents: int | None = None, every_seconds: float = 10.0) -> None:
        self._bar: Any = None
        self._every = every_seconds
        self._last = 0.0
        if sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total_documents, unit="doc", dynamic_ncols=True, file=sys.stderr)

    def __call__(self, report: IngestReport) -> None:
        rate = report.chunks_embedded / report.seconds if report.seconds else 0.0
        if self._bar is not None:
            self._bar.update(report.documents_seen - self._bar.n)
            self._bar.set_postfix(chunks=report.chunks_written, chunks_per_s=f"{rate:.0f}")
            return
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            log.info(
                "%s: %d documents (%d new, %d updated, %d unchanged, %d failed), "
                "%d chunks, %.0f chunks/s",
                report.collection,
                report.documents_seen,
                report.added,
                report.updated,
                report.unchanged,
                len(report.problems),
                report.chunks_written,
                rate,
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
