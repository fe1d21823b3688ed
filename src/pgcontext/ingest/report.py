"""What ingesting did: the counters of a job (`Outcome`) and of a whole run (`IngestReport`).

The counters are said once, on `Outcome`; a report is an outcome with the run's own
fields added, so adding, serialising and merging walk one list of fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from pgcontext.ingest.documents import SourceProblem

if TYPE_CHECKING:
    from pgcontext.ingest.writer import PreparedDocument

WRITE_OUTCOMES = ("added", "updated", "unchanged", "superseded")
"""What pgcontext.write_document can do to one document."""


@dataclass(kw_only=True)
class Outcome:
    """What processing some documents did: the unit of a job's result."""

    problems: list[SourceProblem] = field(default_factory=list)
    # What writing each document did (WRITE_OUTCOMES), then the chunks written, embedded.
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    superseded: int = 0
    """Documents not written because newer state was stored (or deleted) meanwhile."""
    chunks_written: int = 0
    chunks_embedded: int = 0

    def count(self, written: str) -> None:
        """One more document with this outcome of pgcontext.write_document."""
        if written not in WRITE_OUTCOMES:
            raise ValueError(f"unknown write outcome {written!r}")
        setattr(self, written, getattr(self, written) + 1)

    def count_written(
        self, documents: Iterable[PreparedDocument], written: Mapping[str, str]
    ) -> None:
        """Count each document by what writing it did (`written`, by source), and the
        chunks of those added or updated."""
        for item in documents:
            result = written[item.document.source]
            self.count(result)
            if result in ("added", "updated") and item.chunks is not None:
                self.chunks_written += len(item.chunks)

    def add(self, other: Outcome) -> None:
        """Add the counters (and problems) of `other`, a job's outcome or a whole report."""
        for name in _COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.problems.extend(other.problems)

    def as_result(self) -> dict[str, Any]:
        """The job's result as stored in the queue (jsonb)."""
        result: dict[str, Any] = {name: getattr(self, name) for name in _COUNTERS}
        result["problems"] = [[p.source, p.reason] for p in self.problems]
        return result

    @classmethod
    def from_result(cls, result: Mapping[str, Any]) -> Outcome:
        outcome = cls(problems=[SourceProblem(s, r) for s, r in result.get("problems", [])])
        for name in _COUNTERS:
            setattr(outcome, name, int(result.get(name, 0)))
        return outcome


_COUNTERS = tuple(f.name for f in fields(Outcome) if f.name != "problems")


@dataclass
class IngestReport(Outcome):
    """What an ingest run did; `problems` lists every input that could not be indexed."""

    collection: str
    removed: int = 0
    seconds: float = 0.0
    prune_skipped: bool = False
    queued_jobs: int = 0
    failed_jobs: int = 0
    """Jobs of this run that failed for good (`pgcontext retry` queues them again)."""
    left_queued: int = 0
    """Jobs queued and left to `pgcontext worker` processes (`--enqueue`)."""
    expected_documents: int | None = None
    """Documents this run will look at, once known: the denominator of progress and ETA."""

    @property
    def documents_seen(self) -> int:
        return self.added + self.updated + self.unchanged + self.superseded + len(self.problems)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        """The report as `pgcontext ingest --json` prints it."""
        counters = {name: getattr(self, name) for name in _COUNTERS}
        return {
            "collection": self.collection,
            **{name: counters.pop(name) for name in WRITE_OUTCOMES},
            "removed": self.removed,
            "failed": len(self.problems),
            **counters,
            "queued_jobs": self.queued_jobs,
            "failed_jobs": self.failed_jobs,
            "seconds": round(self.seconds, 3),
            "prune_skipped": self.prune_skipped,
            "problems": [{"source": p.source, "reason": p.reason} for p in self.problems],
        }


Progress = Callable[[IngestReport], None]
"""Called with the run's report so far, after each job is written (e.g. a progress bar)."""
