"""Every metric name Allele records itself, in one place.

Counters end in ``_total``; gauges and distributions do not. Names are Prometheus names: the
exposition adds ``_sum`` / ``_count`` / ``_bucket`` to distributions (see the collector's
collision check).
"""

from __future__ import annotations

# --- the collector's own accounting ---------------------------------------------------------
#: Values the fold dropped (label ``reason``: nan, inf, not_a_number, negative_increment,
#: bad_timestamp, drain_backlog) and series refused at the cap (``series_limit``).
DROPPED_METRIC = "allele_metrics_dropped_total"

# --- every registered component (labels component_id, component_type) ------------------------
LATENCY_METRIC = "allele_component_latency_seconds"  # timer, label ``operation``
OPERATIONS_METRIC = "allele_component_operations_total"  # labels operation, outcome
ERRORS_METRIC = "allele_component_errors_total"  # labels operation, error_type
HEARTBEATS_METRIC = "allele_component_heartbeats_total"
ERROR_RATE_METRIC = "allele_component_error_rate"  # gauge, published once per collection
HEARTBEAT_AGE_METRIC = "allele_component_heartbeat_age_seconds"  # gauge, idem
RESOURCE_METRICS = {
    "cpu_percent": "allele_component_cpu_percent",
    "memory_bytes": "allele_component_memory_bytes",
    "gpu_memory_bytes": "allele_component_gpu_memory_bytes",
}
#: Exceptions raised while a monitor recorded (never raised into the workload).
MONITORING_ERRORS_METRIC = "allele_monitoring_errors_total"

# --- the machine and the process (sampled every collection interval) --------------------------
SYSTEM_CPU_PERCENT = "allele_system_cpu_percent"
SYSTEM_MEMORY_PERCENT = "allele_system_memory_percent"
SYSTEM_MEMORY_USED = "allele_system_memory_used_bytes"
SYSTEM_DISK_PERCENT = "allele_system_disk_percent"
SYSTEM_DISK_READ = "allele_system_disk_read_bytes_total"  # counter
SYSTEM_DISK_WRITE = "allele_system_disk_write_bytes_total"  # counter
SYSTEM_NET_SENT = "allele_system_network_sent_bytes_total"  # counter
SYSTEM_NET_RECV = "allele_system_network_received_bytes_total"  # counter
PROCESS_CPU_PERCENT = "allele_process_cpu_percent"
PROCESS_RSS = "allele_process_rss_bytes"
PROCESS_THREADS = "allele_process_threads"
GPU_MEMORY_USED = "allele_gpu_memory_used_bytes"  # labels gpu, name
GPU_UTILIZATION = "allele_gpu_utilization_percent"  # labels gpu, name

# --- evolution (one point per generation, at the generation's end time) ----------------------
EVOLUTION_BEST = "allele_evolution_best_fitness"
EVOLUTION_MEAN = "allele_evolution_mean_fitness"
EVOLUTION_WORST = "allele_evolution_worst_fitness"
EVOLUTION_DIVERSITY = "allele_evolution_diversity"
EVOLUTION_GENERATION = "allele_evolution_generation"
EVOLUTION_EVALUATIONS = "allele_evolution_evaluations_total"

# --- kraken ------------------------------------------------------------------------------------
KRAKEN_SEQUENCES = "allele_kraken_sequences_total"
KRAKEN_STEPS = "allele_kraken_steps_total"
KRAKEN_MEMORY_SIZE = "allele_kraken_memory_size"
KRAKEN_MEMORY_CAPACITY = "allele_kraken_memory_capacity"
KRAKEN_CONSOLIDATIONS = "allele_kraken_memory_consolidations"
KRAKEN_ACTIVATION_MEAN = "allele_kraken_activation_mean"
KRAKEN_ACTIVATION_STD = "allele_kraken_activation_std"
KRAKEN_ACTIVATION_MAX_ABS = "allele_kraken_activation_max_abs"

# --- nlp agent ---------------------------------------------------------------------------------
AGENT_TOKENS = "allele_agent_tokens_total"  # label direction=in|out
AGENT_TTFT = "allele_agent_ttft_seconds"
AGENT_TOKENS_PER_SECOND = "allele_agent_tokens_per_second"
