"""Alert intelligence: anomalies become deduplicated alerts, alerts become clusters (one per
incident) with ranked root causes and a priority, and clusters drive the alert routing.

``config`` (``AlertIntelligenceConfig``), ``dedup`` (anomalies to alerts, duplicates merged),
``clustering`` (the alert distance and the dbscan / kmeans / hierarchical / simple algorithms),
``root_cause`` (topology, temporal precedence, learned co-occurrence), ``correlator``
(``AlertCorrelator``: stable clusters over batches, priority, escalation) and ``manager``
(``IntelligentAlertManager``: the whole pipeline, the store and the router).
"""
