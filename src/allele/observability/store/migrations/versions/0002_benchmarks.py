"""Benchmark tables: suite runs, their cells (raw samples packed per cell), baselines, noise.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02

``bench_cells.samples`` holds every raw sample of a cell as little-endian float64 values, metric
after metric, in the order and with the counts listed by ``bench_cells.sample_index`` (a JSON
array of ``[name, count]`` pairs). One row per cell keeps a 1000-cell suite one executemany.
Timestamps are epoch seconds (UTC) as double precision, like the observability tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bench_suites",
        sa.Column("suite_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("component", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("finished_at", sa.Double, nullable=True),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("machine", sa.Text, nullable=False),
        sa.Column("commit_info", sa.Text, nullable=False),
    )
    op.create_index("ix_bench_suites_name_created", "bench_suites", ["name", "created_at"])
    op.create_index("ix_bench_suites_created", "bench_suites", ["created_at"])
    op.create_table(
        "bench_cells",
        sa.Column(
            "suite_id",
            sa.String(64),
            sa.ForeignKey("bench_suites.suite_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("cell_key", sa.String(1000), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sample_index", sa.Text, nullable=False),
        sa.Column("samples", sa.LargeBinary, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("inner_loops", sa.Integer, nullable=False),
        sa.Column("processes", sa.Integer, nullable=False),
        sa.Column("run_indices", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("node", sa.String(255), nullable=True),
        sa.Column("started_at", sa.Double, nullable=True),
        sa.Column("finished_at", sa.Double, nullable=True),
    )
    op.create_table(
        "bench_baselines",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column(
            "suite_id",
            sa.String(64),
            sa.ForeignKey("bench_suites.suite_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("set_at", sa.Double, nullable=False),
    )
    op.create_table(
        "bench_calibrations",
        sa.Column("suite_name", sa.String(200), primary_key=True),
        sa.Column("noise", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bench_calibrations")
    op.drop_table("bench_baselines")
    op.drop_table("bench_cells")
    op.drop_index("ix_bench_suites_created", table_name="bench_suites")
    op.drop_index("ix_bench_suites_name_created", table_name="bench_suites")
    op.drop_table("bench_suites")
