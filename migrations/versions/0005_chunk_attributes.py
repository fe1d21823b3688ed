"""chunk.attributes: what pgcontext derives for a chunk, kept apart from the user's metadata.

Until now the chunk's heading was written into chunk.metadata under "heading", overwriting a
user's own "heading" key (and so defeating filters on it). The rule from here on: metadata,
of documents and chunks, belongs to the user alone; everything pgcontext adds per chunk
(heading now; page numbers, tenant or sync source later) goes into `attributes`.

Existing headings move out of metadata where they differ from the document's own metadata
"heading", and the user's value comes back (where they are equal the key may well be the
user's, so it stays; the chunk keeps no heading attribute then).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE pgcontext.chunk ADD COLUMN attributes jsonb NOT NULL DEFAULT '{}'::jsonb"
    )
    op.execute(
        """
        UPDATE pgcontext.chunk c
        SET attributes = jsonb_build_object('heading', c.metadata -> 'heading'),
            -- chunk metadata is a copy of the document's: give back the user's own heading
            metadata = CASE
                WHEN d.metadata ? 'heading'
                THEN c.metadata || jsonb_build_object('heading', d.metadata -> 'heading')
                ELSE c.metadata - 'heading' END
        FROM pgcontext.document d
        WHERE d.id = c.document_id
          AND c.metadata ? 'heading'
          AND (d.metadata -> 'heading') IS DISTINCT FROM (c.metadata -> 'heading')
        """
    )


def downgrade() -> None:
    op.execute(
        """
        UPDATE pgcontext.chunk
        SET metadata = metadata || jsonb_build_object('heading', attributes -> 'heading')
        WHERE attributes ? 'heading'
        """
    )
    op.execute("ALTER TABLE pgcontext.chunk DROP COLUMN attributes")
