"""One type for a search hit, and hybrid search that takes ef_search, k1 and b.

Every search function (search, keyword_search, hybrid_search, similar_to_chunk,
similar_to_document) now returns SETOF pgcontext.search_hit, the ten columns they always
returned, in the same order. A function's return type cannot change in place, and a changed
argument list would add an overload beside the old one: so the old functions are dropped
here, and sql/ creates them anew right after the migrations.

The downgrade drops the type (and with it every function returning it) and the private
helpers of sql/005_search_common.sql, then restores the functions as revision 0005 had
them, from 0006_search_functions_0005.sql beside this file.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Their signatures up to 0005 (hybrid_search then had no k1 and b).
_BEFORE_0006 = (
    "pgcontext.search(text, vector, integer, jsonpath, integer)",
    "pgcontext.keyword_search(text, text, integer, jsonpath, double precision, double precision)",
    "pgcontext.hybrid_search(text, text, vector, integer, jsonpath, integer, integer,"
    " double precision, double precision, integer)",
    "pgcontext.similar_to_chunk(bigint, integer, jsonpath)",
    "pgcontext.similar_to_document(text, text, integer, jsonpath)",
)
_HELPERS = (
    "pgcontext._collection_named(text, text)",
    "pgcontext._check_between(text, text, double precision, text, text)",
    "pgcontext._check_query_embedding(text, vector)",
)
_FUNCTIONS_0005 = Path(__file__).with_name("0006_search_functions_0005.sql")


def upgrade() -> None:
    for signature in _BEFORE_0006:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    op.execute(
        """
        CREATE TYPE pgcontext.search_hit AS (
            chunk_id    bigint,
            document_id bigint,
            source      text,
            title       text,
            score       double precision,
            text        text,
            "position"  integer,
            char_start  integer,
            char_end    integer,
            metadata    jsonb
        )
        """
    )
    op.execute(
        "COMMENT ON TYPE pgcontext.search_hit IS 'One row of any pgcontext search function:"
        " a chunk, its document and its score (higher is better).'"
    )


def downgrade() -> None:
    # CASCADE: the search functions (and pgcontext._hits) return the type.
    op.execute("DROP TYPE pgcontext.search_hit CASCADE")
    for signature in _HELPERS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    # Straight to the driver: one script, its `%` signs left alone (as migrate.apply_sql_files).
    driver = op.get_bind().connection.driver_connection
    assert driver is not None
    driver.execute(_FUNCTIONS_0005.read_text(encoding="utf-8").encode())
