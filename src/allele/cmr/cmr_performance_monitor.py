"""The design documents' ``models.cmr_performance_monitor`` module: ``CMRPerformanceMonitor``
under the name the documents give its page."""

from allele.cmr.alerting import AlertPolicy, CMRAlert
from allele.cmr.health import HealthReport
from allele.cmr.monitor import CMRPerformanceMonitor

__all__ = ["AlertPolicy", "CMRAlert", "CMRPerformanceMonitor", "HealthReport"]
