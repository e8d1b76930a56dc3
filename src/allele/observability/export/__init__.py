"""Exports of observability data: files (JSON, CSV, Parquet), Prometheus, OpenTelemetry.

Each exporter lives in its own module and imports its optional dependency only when used:
``files`` (pyarrow for Parquet), ``prometheus`` (none), ``server`` (none), ``otel``
(opentelemetry-sdk).
"""
