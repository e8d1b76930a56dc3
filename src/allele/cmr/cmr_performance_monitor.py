"""The design documents' ``models.cmr_performance_monitor`` module: ``CMRPerformanceMonitor``
under the name the documents give its page."""

from allele.cmr.alerting import AlertPolicy, CMRAlert
from allele.cmr.monitor import CMRPerformanceMonitor, HealthReport

__all__ = ["AlertPolicy", "CMRAlert", "CMRPerformanceMonitor", "HealthReport"]
