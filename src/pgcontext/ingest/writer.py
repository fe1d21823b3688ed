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
from pgcontext.ingest.chunking import Chunk
from pgcontext.ingest.sources import SourceDocument

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


@dataclass(frozen=True)
class PreparedDocument:
    """A document chunked and embedded, ready to be written."""

    document: SourceDocument
    content_hash: str
    chunks: list[Chunk]
    embeddings: Vectors


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
        "SELECT source, id, content_hash FROM pgcontext.document"
        " WHERE collection_id = %s AND source = ANY(%s)",
        (collection_id, list(sources)),
    ).fetchall()
    return {source: StoredDocument(doc_id, digest) for source, doc_id, digest in rows}


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
) -> None:
    """Upsert the documents and replace their chunks, all or nothing."""
    if not batch:
        return
    with conn.transaction():
        doc_ids = _upsert_documents(conn, collection.id, batch)
        conn.execute("DELETE FROM pgcontext.chunk WHERE document_id = ANY(%s)", (doc_ids,))
        with conn.cursor() as cur, cur.copy(COPY_CHUNKS) as copy:
            copy.set_types(COPY_TYPES)
            for doc_id, prepared in zip(doc_ids, batch, strict=True):
                for chunk, vector in zip(prepared.chunks, prepared.embeddings, strict=True):
                    copy.write_row(
                        _chunk_row(collection.id, doc_id, prepared, chunk, vector, ts_oid)
                    )


def _upsert_documents(
    conn: Conn, collection_id: int, batch: Sequence[PreparedDocument]
) -> list[int]:
    params = [
        (
            collection_id,
            p.document.source,
            p.document.title,
            Jsonb(p.document.metadata),
            p.content_hash,
            len(p.document.text),
        )
        for p in batch
    ]
    ids: list[int] = []
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO pgcontext.document
                (collection_id, source, title, metadata, content_hash, char_count)
            VALUES (%s, %s, %s, %s, %s, %s)
            ON CONFLICT (collection_id, source) DO UPDATE SET
                title = EXCLUDED.title, metadata = EXCLUDED.metadata,
                content_hash = EXCLUDED.content_hash, char_count = EXCLUDED.char_count,
                updated_at = now()
            RETURNING id
            """,
            params,
            returning=True,
        )
        while True:
            row = cur.fetchone()
            assert row is not None
            ids.append(int(row[0]))
            if not cur.nextset():
                break
    return ids


def _chunk_row(
    collection_id: int,
    doc_id: int,
    prepared: PreparedDocument,
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
        Jsonb(prepared.document.metadata),  # the user's, unchanged: no reserved keys
        Jsonb(chunk_attributes(chunk)),
        ts_oid,
        np.asarray(vector, dtype=np.float32),
    )


def chunk_attributes(chunk: Chunk) -> dict[str, Any]:
    """What pgcontext adds to a chunk, in chunk.attributes (never in the user's metadata)."""
    return {"heading": chunk.heading} if chunk.heading else {}


def delete_missing(conn: Conn, collection_id: int, seen_sources: set[str]) -> list[str]:
    """--prune: remove documents whose source was not seen in this run; returns their sources."""
    rows = conn.execute(
        "DELETE FROM pgcontext.document WHERE collection_id = %s AND NOT (source = ANY(%s))"
        " RETURNING source",
        (collection_id, sorted(seen_sources)),
    ).fetchall()
    return sorted(row[0] for row in rows)
