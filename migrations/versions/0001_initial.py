"""Initial catalog: media, views (with descriptions), jobs, and the lexical index.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False, index=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("mime", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("duration_s", sa.Float),
        sa.Column("filename", sa.String(512)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("warnings", sa.JSON),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("tenant", "sha256", name="uq_media_tenant_sha256"),
    )
    op.create_index("ix_media_status", "media", ["status"])
    op.create_index("ix_media_created_at", "media", ["created_at"])
    op.create_table(
        "views",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("media_id", sa.String(40), sa.ForeignKey("media.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("t_start", sa.Float),
        sa.Column("t_end", sa.Float),
        sa.Column("page", sa.Integer),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("image_sha256", sa.String(64)),
        sa.Column("caption", sa.Text, nullable=False),
        sa.Column("description", sa.JSON),
        sa.Column("search_text", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("media_id", "idx", name="uq_views_media_idx"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("media_id", sa.String(40), sa.ForeignKey("media.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("stage", sa.String(32)),
        sa.Column("error", sa.Text),
        sa.Column("warnings", sa.JSON),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("timings", sa.JSON),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS),
        sa.Column("finished_at", TS),
    )
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE view_fts USING fts5("
            "view_id UNINDEXED, tenant UNINDEXED, kind UNINDEXED, body, "
            "tokenize='unicode61 remove_diacritics 2')"
        )
    elif bind.dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_views_search_text_fts ON views "
            "USING GIN (to_tsvector('simple', search_text))"
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS view_fts")
    op.drop_table("jobs")
    op.drop_table("views")
    op.drop_table("media")
