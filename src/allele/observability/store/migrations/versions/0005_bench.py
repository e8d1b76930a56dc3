"""Benchmark cells record the signal that killed a worker (the out-of-memory killer's SIGKILL).

Revision ID: 0005_bench
Revises: 0002
Create Date: 2026-12-06

``bench_cells.signal`` is the number of the signal that ended a cell's failed worker process
(status ``killed``), NULL otherwise. Suite runs with failed cells are stored with status
``failed`` (the column is unchanged: a String(16)).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_bench"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("bench_cells", sa.Column("signal", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bench_cells") as batch:
        batch.drop_column("signal")
