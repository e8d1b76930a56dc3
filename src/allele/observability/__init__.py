"""Observability: metrics, the engine, alerts, persistence and exports for Allele workloads."""
