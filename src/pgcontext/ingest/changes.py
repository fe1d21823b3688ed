"""A batch sorted against what is stored: each document new, changed or unchanged.

Enqueue, the worker and import ask this alike, through `split_batch`: the stored state of
the batch's sources is loaded in one statement and each content hash compared with it.
What may be stored at all is decided once, in `storable`, where a document is hashed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from pgcontext.ingest import jobs, writer
from pgcontext.ingest.documents import PrecomputedChunk, SourceDocument, SourceProblem
from pgcontext.ingest.values import check_json_value, check_text

Conn = psycopg.Connection[Any]


@dataclass
class Split:
    """A batch's documents by what the database holds for their sources, in batch order."""

    states: dict[str, jobs.SourceState]
    unchanged: list[writer.HashedDocument] = field(default_factory=list)
    changed: list[writer.HashedDocument] = field(default_factory=list)
    """New (`states[source].stored` is None) or changed: what needs writing."""
    superseded: list[writer.HashedDocument] = field(default_factory=list)
    """Only with versions: newer content (or a deletion) is stored already."""


def split_batch(
    conn: Conn,
    collection_id: int,
    batch: Sequence[writer.HashedDocument],
    versions: Mapping[str, int] | None = None,
) -> Split:
    """Sort `batch` against its sources' stored state.

    Without `versions` (enqueue, import: this input is the latest word), a document is
    unchanged if it is stored with this content and no unfinished job carries a newer
    version. With `versions` (a job's documents, by source: 0 if absent), a document is
    superseded if a version at least as new is stored or deleted, and unchanged if it is
    stored with this content (writing it then only takes the job's newer version).
    """
    states = jobs.source_states(conn, collection_id, [h.document.source for h in batch])
    split = Split(states)
    for hashed in batch:
        state = states[hashed.document.source]
        if versions is None:
            same = state.unchanged(hashed.content_hash)
        elif state.newest_written >= versions.get(hashed.document.source, 0):
            split.superseded.append(hashed)
            continue
        else:
            same = state.stored is not None and state.stored.content_hash == hashed.content_hash
        (split.unchanged if same else split.changed).append(hashed)
    return split


def storable(
    doc: SourceDocument,
    digest: Callable[[SourceDocument], str] | None = None,
    also: Callable[[SourceDocument], SourceProblem | None] | None = None,
) -> writer.HashedDocument | SourceProblem:
    """The document with its content hash (`digest`, or writer.content_hash), or the
    problem that keeps it out of the database: its values, then the check `also`."""
    checked = check_storable(doc)
    if isinstance(checked, SourceProblem):
        return checked
    problem = also(doc) if also is not None else None
    if problem is not None:
        return problem
    return writer.HashedDocument(doc, (digest or writer.content_hash)(doc))


def check_storable(doc: SourceDocument) -> SourceDocument | SourceProblem:
    """Refuse what PostgreSQL cannot store or the export cannot give back (see values).

    Checked per document, so that one bad value never fails a whole batch.
    """
    problem = (
        check_text(doc.source, "source")
        or (check_text(doc.title, "title") if doc.title is not None else None)
        or check_text(doc.text, "text")
        or check_json_value(doc.metadata)
    )
    return doc if problem is None else SourceProblem(doc.source, problem)


def check_types(item: object) -> SourceProblem | None:
    """Why a document given to the Python API is not a SourceDocument of the declared
    field types, or None: the dataclass does not check them, and one bad document must
    not abort the run with a TypeError."""
    if isinstance(item, SourceProblem):
        return None
    if not isinstance(item, SourceDocument):
        return SourceProblem(repr(item)[:80], f"not a SourceDocument: {_typed(item)}")
    source = item.source if isinstance(item.source, str) else repr(item.source)[:80]
    for name, value, allowed, wanted in [
        ("source", item.source, str, "a string"),
        ("title", item.title, str | None, "a string or None"),
        ("text", item.text, str, "a string"),
        ("metadata", item.metadata, dict, "a dict"),
        ("chunks", item.chunks, tuple, "a tuple of PrecomputedChunk"),
    ]:
        if not isinstance(value, allowed):
            return SourceProblem(source, f"{name} must be {wanted}, not {_typed(value)}")
    for chunk in item.chunks:
        if not isinstance(chunk, PrecomputedChunk):
            return SourceProblem(
                source, f"chunks must be a tuple of PrecomputedChunk, not of {_typed(chunk)}"
            )
    return None


def _typed(value: object) -> str:
    return f"{type(value).__name__} {repr(value)[:60]}"
