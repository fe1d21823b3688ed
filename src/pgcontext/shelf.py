"""`Shelf`: the collections of one database (create, find, list, annotate, drop) on one pool,
with the embedding model a new collection is bound to. The SQL is in pgcontext.catalog."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg_pool import ConnectionPool

from pgcontext import catalog
from pgcontext.catalog import CollectionInfo, CollectionSettings
from pgcontext.models import Models


class Shelf:
    """The collections of one Store."""

    def __init__(self, pool: ConnectionPool, models: Models) -> None:
        self._pool = pool
        self._models = models

    def create(
        self, name: str, *, model: str | None = None, settings: CollectionSettings | None = None
    ) -> CollectionInfo:
        """Create `name` bound to `model`; returns the existing one if its settings match."""
        catalog.validate_name(name)  # a bad name is refused before the model loads
        spec = self._models.embedder(model).spec
        with self._pool.connection() as conn:
            return catalog.create_collection(conn, name, spec, settings)

    def get(self, name: str) -> CollectionInfo:
        with self._pool.connection() as conn:
            return catalog.get_collection(conn, name)

    def all(self) -> list[CollectionInfo]:
        with self._pool.connection() as conn:
            return catalog.list_collections(conn)

    def annotate(self, name: str, patch: Mapping[str, Any]) -> None:
        """Merge `patch` into the collection's metadata (free-form notes, e.g. eval state)."""
        with self._pool.connection() as conn:
            catalog.update_metadata(conn, name, patch)

    def drop(self, name: str) -> bool:
        with self._pool.connection() as conn:
            return catalog.drop_collection(conn, name)
