"""`pgcontext export`: a collection's chunks as JSONL, the exact input of an import.

Each line is one chunk with its embedding and everything needed to rebuild the document
and to check the model on the way in: ingesting the file into another database restores
the collection without running the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import orjson
import psycopg

from pgcontext.catalog import CollectionInfo

Conn = psycopg.Connection[Any]

_QUERY = """
    SELECT c.id, d.source, d.title, d.metadata, c.position, c.text, c.char_start, c.char_end,
           c.token_count, c.attributes ->> 'heading', c.embedding
    FROM pgcontext.chunk c JOIN pgcontext.document d ON d.id = c.document_id
    WHERE c.collection_id = %s
    ORDER BY d.source, c.position
"""


def export_lines(conn: Conn, collection: CollectionInfo) -> Iterator[bytes]:
    """One JSON line per chunk, documents in source order, chunks in position order."""
    model = {
        "name": collection.model.name,
        "revision": collection.model.revision,
        "dimensions": collection.model.dimensions,
    }
    # A named (server-side) cursor streams: a collection larger than memory exports fine.
    with conn.transaction(), conn.cursor(name="pgcontext_export") as cur:
        cur.itersize = 2000
        cur.execute(_QUERY, (collection.id,))
        for (
            chunk_id,
            source,
            title,
            metadata,
            position,
            text,
            start,
            end,
            tokens,
            heading,
            embedding,
        ) in cur:
            record = {
                "document": source,
                "chunk_id": chunk_id,
                "position": position,
                "title": title,
                "text": text,
                "metadata": metadata,
                "span": [start, end],
                "token_count": tokens,
                "heading": heading,
                "model": model,
                "embedding": embedding.to_numpy(),
            }
            yield orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"


def write_export(conn: Conn, collection: CollectionInfo, out: IO[bytes]) -> int:
    count = 0
    for line in export_lines(conn, collection):
        out.write(line)
        count += 1
    return count
