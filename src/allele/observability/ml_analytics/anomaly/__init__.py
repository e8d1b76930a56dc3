"""Anomaly detection: batch estimators, streaming detectors, type classification, NAB."""
