"""Writes documents and their chunks: one transaction per batch, vectors by binary COPY."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from pgcontext.catalog import CollectionInfo
from pgcontext.embed.base import Vectors
from pgcontext.errors import ChangedWhilePreparedError
from pgcontext.ingest.chunking import Chunk
from pgcontext.ingest.documents import SourceDocument

Conn = psycopg.Connection[Any]

COPY_CHUNKS = (
    "COPY pgcontext.chunk (collection_id, document_id, position, text, text_hash, token_count,"
    " char_start, char_end, metadata, attributes, ts_config, embedding)"
    " FROM STDIN WITH (FORMAT BINARY)"
)
# regconfig goes over binary COPY as its oid, hence "oid" here.
# The column is plain vector for every collection; halfvec only shapes a collection's index.
COPY_TYPES = [
    "int4",
    "int8",
    "int4",
    "text",
    "text",
    "int4",
    "int4",
    "int4",
    "jsonb",
    "jsonb",
    "oid",
    "vector",
]


@dataclass(frozen=True)
class StoredDocument:
    id: int
    content_hash: str
    version: int


@dataclass(frozen=True)
class PreparedDocument:
    """A document chunked and embedded, ready to be written as `version` (see
    sql/035_document_versions.sql). Without chunks it was unchanged when prepared: writing
    it only takes the newer version."""

    document: SourceDocument
    content_hash: str
    chunks: list[Chunk] | None
    embeddings: Vectors | None
    version: int


@dataclass(frozen=True)
class HashedDocument:
    """A document with its content hash, computed once, where the document is read."""

    document: SourceDocument
    content_hash: str

    @classmethod
    def of(cls, document: SourceDocument) -> HashedDocument:
        return cls(document, content_hash(document))


def content_hash(document: SourceDocument) -> str:
    """What decides "unchanged": the text, the title and the metadata."""
    payload = json.dumps(
        [document.title, document.text, document.metadata], sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def stored_documents(
    conn: Conn, collection_id: int, sources: Sequence[str]
) -> dict[str, StoredDocument]:
    rows = conn.execute(
        "SELECT source, id, content_hash, version FROM pgcontext.document"
        " WHERE collection_id = %s AND source = ANY(%s)",
        (collection_id, list(sources)),
    ).fetchall()
    return {source: StoredDocument(doc_id, digest, v) for source, doc_id, digest, v in rows}


def next_versions(conn: Conn, count: int) -> list[int]:
    """`count` new versions from the one sequence, in increasing order."""
    rows = conn.execute(
        "SELECT nextval('pgcontext.document_version_seq') FROM generate_series(1, %s) ORDER BY 1",
        (count,),
    ).fetchall()
    return [int(row[0]) for row in rows]


def reusable_embeddings(conn: Conn, document_ids: Sequence[int]) -> dict[str, Any]:
    """Embeddings of the chunks of documents about to be replaced, by text hash.

    A changed document often keeps most of its paragraphs: those chunks keep their vectors
    instead of going through the model again.
    """
    if not document_ids:
        return {}
    rows = conn.execute(
        "SELECT text_hash, embedding FROM pgcontext.chunk WHERE document_id = ANY(%s)",
        (list(document_ids),),
    ).fetchall()
    return {digest: _as_array(vector) for digest, vector in rows}


def _as_array(vector: Any) -> Any:
    # pgvector-python returns Vector objects (0.4+) or numpy arrays (older) for vector columns.
    return vector.to_numpy() if hasattr(vector, "to_numpy") else np.asarray(vector)


def ts_config_oid(conn: Conn, collection: CollectionInfo) -> int:
    row = conn.execute("SELECT %s::regconfig::oid", (collection.text_search_config,)).fetchone()
    assert row is not None
    return int(row[0])


def write_batch(
    conn: Conn, collection: CollectionInfo, batch: Sequence[PreparedDocument], ts_oid: int
) -> dict[str, str]:
    """Write each document unless a newer version is stored (or deleted), and replace the
    chunks of those added or updated, all or nothing.

    Returns each source's outcome: added, updated, unchanged or superseded.
    """
    outcomes: dict[str, str] = {}
    if not batch:
        return outcomes
    # Source order: every writer locks document keys in this order (no deadlocks).
    ordered = sorted(batch, key=lambda p: p.document.source)
    with conn.transaction():
        rewrite: list[tuple[int, PreparedDocument]] = []
        for prepared, (doc_id, outcome) in zip(
            ordered, write_documents(conn, collection.id, ordered), strict=True
        ):
            outcomes[prepared.document.source] = outcome
            if outcome in ("added", "updated"):
                rewrite.append((doc_id, prepared))
        if not rewrite:
            return outcomes
        conn.execute(
            "DELETE FROM pgcontext.chunk WHERE document_id = ANY(%s)",
            ([doc_id for doc_id, _ in rewrite],),
        )
        with conn.cursor() as cur, cur.copy(COPY_CHUNKS) as copy:
            copy.set_types(COPY_TYPES)
            for doc_id, prepared in rewrite:
                assert prepared.chunks is not None and prepared.embeddings is not None
                # The user's metadata, unchanged (no reserved keys), serialised once.
                metadata = _serialised(prepared.document.metadata)
                for chunk, vector in zip(prepared.chunks, prepared.embeddings, strict=True):
                    copy.write_row(
                        _chunk_row(collection.id, doc_id, metadata, chunk, vector, ts_oid)
                    )
    return outcomes


def write_documents(
    conn: Conn, collection_id: int, batch: Sequence[PreparedDocument]
) -> list[tuple[int, str]]:
    """The document rows, each compared and set in SQL: (id, outcome) per document."""
    params = [
        (
            collection_id,
            p.document.source,
            p.document.title,
            Jsonb(p.document.metadata),
            p.content_hash,
            len(p.document.text),
            p.version,
        )
        for p in batch
    ]
    results: list[tuple[int, str]] = []
    changed: list[str] = []
    with conn.cursor() as cur:
        cur.executemany(
            "SELECT document_id, outcome FROM pgcontext.write_document(%s, %s, %s, %s, %s, %s, %s)",
            params,
            returning=True,
        )
        for prepared in batch:
            row = cur.fetchone()
            assert row is not None
            doc_id, outcome = row
            if outcome in ("added", "updated") and prepared.chunks is None:
                changed.append(prepared.document.source)
            results.append((-1 if doc_id is None else int(doc_id), str(outcome)))
            cur.nextset()
    if changed:
        # Written without chunks: the caller's transaction must not commit this.
        raise ChangedWhilePreparedError(changed)
    return results


def _serialised(value: Any) -> Jsonb:
    """A jsonb value serialised now, once, however many rows carry it."""
    return Jsonb(json.dumps(value).encode(), dumps=_as_is)


def _as_is(data: Any) -> Any:
    return data


def _chunk_row(
    collection_id: int,
    doc_id: int,
    metadata: Jsonb,
    chunk: Chunk,
    vector: Any,
    ts_oid: int,
) -> tuple[Any, ...]:
    return (
        collection_id,
        doc_id,
        chunk.position,
        chunk.text,
        text_hash(chunk.text),
        chunk.token_count,
        chunk.start,
        chunk.end,
        metadata,
        Jsonb(chunk_attributes(chunk)),
        ts_oid,
        np.asarray(vector, dtype=np.float32),
    )


def chunk_attributes(chunk: Chunk) -> dict[str, Any]:
    """What pgcontext adds to a chunk, in chunk.attributes (never in the user's metadata)."""
    return {"heading": chunk.heading} if chunk.heading else {}


def delete_missing(conn: Conn, collection_id: int, seen_sources: set[str]) -> list[str]:
    """prune: remove documents whose source was not seen in this run; returns their sources.

    Each leaves a tombstone, so work queued before the prune cannot bring it back.
    """
    with conn.transaction():
        rows = conn.execute(
            "SELECT pgcontext.delete_documents(%s, ARRAY(SELECT source FROM pgcontext.document"
            " WHERE collection_id = %s AND NOT (source = ANY(%s))))",
            (collection_id, collection_id, sorted(seen_sources)),
        ).fetchall()
    return sorted(row[0] for row in rows)


def forget_tombstones(conn: Conn) -> int:
    """Drop the tombstones no unfinished work can need (the rule is in
    sql/035_document_versions.sql); returns how many."""
    row = conn.execute("SELECT pgcontext.forget_tombstones()").fetchone()
    return int(row[0]) if row else 0
