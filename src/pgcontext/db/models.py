"""SQLAlchemy 2 models of every table, for applications that use the database directly.

The migrations in migrations/ are the source of truth; tests/migration checks that these
models match the migrated schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Sequence,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.dialects.postgresql import JSONB, REGCONFIG, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SCHEMA = "pgcontext"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


# Versions of queued work and stored documents (see sql/035_document_versions.sql).
DOCUMENT_VERSION_SEQ = Sequence("document_version_seq", metadata=Base.metadata)


def _checks(table: str, **checks: str) -> tuple[CheckConstraint, ...]:
    """CHECK constraints named as PostgreSQL names a column's own: <table>_<column>_check."""
    return tuple(CheckConstraint(sql, name=f"{table}_{key}_check") for key, sql in checks.items())


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


def _collection_ref(*, primary_key: bool = False) -> Mapped[int]:
    """The collection a row belongs to: it goes when its collection is dropped."""
    return mapped_column(ForeignKey("collection.id", ondelete="CASCADE"), primary_key=primary_key)


class EmbeddingModel(Base):
    """An embedding function: embeddings are comparable only within one row of this table."""

    __tablename__ = "embedding_model"
    __table_args__ = (
        UniqueConstraint("name", "revision", name="embedding_model_name_revision_key"),
        *_checks(
            "embedding_model",
            dimensions="dimensions BETWEEN 1 AND 16000",
            distance="distance IN ('cosine')",
            max_tokens="max_tokens > 0",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(always=True), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    revision: Mapped[str] = mapped_column(Text)
    dimensions: Mapped[int] = mapped_column(Integer)
    distance: Mapped[str] = mapped_column(Text, server_default=sql_text("'cosine'"))
    normalized: Mapped[bool] = mapped_column(Boolean)
    max_tokens: Mapped[int] = mapped_column(Integer)
    location: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class Collection(Base):
    """A named set of documents bound to one embedding model and one chunking setting."""

    __tablename__ = "collection"
    __table_args__ = (
        UniqueConstraint("name", name="collection_name_key"),
        *_checks(
            "collection",
            name="name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'",
            chunk_tokens="chunk_tokens >= 8",
            chunk_overlap="chunk_overlap >= 0",
            vector_type="vector_type IN ('vector', 'halfvec')",
            hnsw_m="hnsw_m BETWEEN 2 AND 100",
            hnsw_ef_construction="hnsw_ef_construction BETWEEN 4 AND 1000",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(always=True), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    model_id: Mapped[int] = mapped_column(ForeignKey("embedding_model.id"))
    chunk_tokens: Mapped[int] = mapped_column(Integer)
    chunk_overlap: Mapped[int] = mapped_column(Integer)
    text_search_config: Mapped[str] = mapped_column(
        REGCONFIG, server_default=sql_text("'english'::regconfig")
    )
    vector_type: Mapped[str] = mapped_column(Text, server_default=sql_text("'vector'"))
    hnsw_m: Mapped[int] = mapped_column(Integer, server_default=sql_text("16"))
    hnsw_ef_construction: Mapped[int] = mapped_column(Integer, server_default=sql_text("64"))
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, server_default=sql_text("'{}'::jsonb")
    )
    created_at: Mapped[datetime] = _created()

    model: Mapped[EmbeddingModel] = relationship()


class Document(Base):
    """One source (file, record, URL) in a collection; its chunks hang off it."""

    __tablename__ = "document"
    __table_args__ = (
        UniqueConstraint("collection_id", "source", name="document_collection_source_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    collection_id: Mapped[int] = _collection_ref()
    tenant_id: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, server_default=sql_text("'{}'::jsonb")
    )
    content_hash: Mapped[str] = mapped_column(Text)
    char_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()
    version: Mapped[int] = mapped_column(
        BigInteger, server_default=sql_text("nextval('pgcontext.document_version_seq'::regclass)")
    )

    chunks: Mapped[list[Chunk]] = relationship(
        back_populates="document", order_by="Chunk.position", passive_deletes=True
    )


class Chunk(Base):
    """A token-bounded passage of a document with its embedding and full-text vector."""

    __tablename__ = "chunk"
    __table_args__ = (
        UniqueConstraint("document_id", "position", name="chunk_document_position_key"),
        *_checks(
            "chunk",
            position="position >= 0",
            token_count="token_count >= 0",
            span="char_start >= 0 AND char_end >= char_start",
        ),
        Index("chunk_collection_idx", "collection_id"),
        Index("chunk_tsv_idx", "tsv", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    collection_id: Mapped[int] = _collection_ref()
    document_id: Mapped[int] = mapped_column(ForeignKey("document.id", ondelete="CASCADE"))
    tenant_id: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(Text)
    token_count: Mapped[int] = mapped_column(Integer)
    char_start: Mapped[int] = mapped_column(Integer)
    char_end: Mapped[int] = mapped_column(Integer)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, server_default=sql_text("'{}'::jsonb")
    )
    # What pgcontext derives for the chunk ("heading"; later page, tenant, sync source):
    # never written into the user's metadata, whose keys are all the user's.
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, server_default=sql_text("'{}'::jsonb")
    )
    ts_config: Mapped[str] = mapped_column(REGCONFIG)
    tsv: Mapped[str] = mapped_column(
        TSVECTOR, Computed("to_tsvector(ts_config, text)", persisted=True)
    )
    # No fixed dimension: collections with different models share this column; each
    # collection's HNSW index casts to its own dimension.
    embedding: Mapped[Any] = mapped_column(Vector())

    document: Mapped[Document] = relationship(back_populates="chunks")


class IngestJob(Base):
    """One unit of ingest work, claimed by workers with FOR UPDATE SKIP LOCKED."""

    __tablename__ = "ingest_queue"
    __table_args__ = (
        *_checks(
            "ingest_queue",
            status="status IN ('queued', 'running', 'done', 'failed')",
            max_attempts="max_attempts >= 1",
        ),
        Index(
            "ingest_queue_claim_idx",
            "run_after",
            postgresql_where=sql_text("status IN ('queued', 'running')"),
        ),
        Index("ingest_queue_collection_status_idx", "collection_id", "status"),
        Index("ingest_queue_run_idx", "run_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    collection_id: Mapped[int] = _collection_ref()
    source: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sql_text("'{}'::jsonb"))
    status: Mapped[str] = mapped_column(Text, server_default=sql_text("'queued'"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=sql_text("0"))
    max_attempts: Mapped[int] = mapped_column(Integer, server_default=sql_text("5"))
    run_after: Mapped[datetime] = _created()
    lease_owner: Mapped[str | None] = mapped_column(Text)
    leased_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()
    run_id: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sql_text("'{}'::jsonb"))


class DocumentTombstone(Base):
    """A deleted document: work queued for it before `version` cannot bring it back."""

    __tablename__ = "document_tombstone"

    collection_id: Mapped[int] = _collection_ref(primary_key=True)
    source: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    deleted_at: Mapped[datetime] = _created()


class QueuedDocument(Base):
    """A document an unfinished ingest job carries, with its content hash and version."""

    __tablename__ = "queued_document"
    __table_args__ = (Index("queued_document_source_idx", "collection_id", "source"),)

    job_id: Mapped[int] = mapped_column(
        ForeignKey("ingest_queue.id", ondelete="CASCADE"), primary_key=True
    )
    collection_id: Mapped[int] = _collection_ref()
    source: Mapped[str] = mapped_column(Text, primary_key=True)
    content_hash: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(BigInteger)


class CollectionStats(Base):
    """BM25 statistics of a collection: chunk count and total length in lexemes."""

    __tablename__ = "collection_stats"

    collection_id: Mapped[int] = _collection_ref(primary_key=True)
    chunks: Mapped[int] = mapped_column(BigInteger, server_default=sql_text("0"))
    tokens: Mapped[int] = mapped_column(BigInteger, server_default=sql_text("0"))


class TermStats(Base):
    """BM25 statistics of a term: in how many chunks of the collection it occurs."""

    __tablename__ = "term_stats"

    collection_id: Mapped[int] = _collection_ref(primary_key=True)
    term: Mapped[str] = mapped_column(Text, primary_key=True)
    chunks: Mapped[int] = mapped_column(Integer)


__all__ = [
    "Base",
    "Chunk",
    "Collection",
    "CollectionStats",
    "Document",
    "DocumentTombstone",
    "EmbeddingModel",
    "IngestJob",
    "QueuedDocument",
    "TermStats",
]
