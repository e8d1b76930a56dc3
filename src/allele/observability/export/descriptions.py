"""HELP texts: what each metric the package records is, in the words of its exposition."""

from __future__ import annotations

from allele.observability.types import MetricType

_KNOWN = {
    "allele_metrics_dropped_total": "Values the collector dropped, by reason (NaN, inf, ...)",
    "allele_component_latency_seconds": "Duration of a component's operations, in seconds",
    "allele_component_operations_total": "Operations a component completed, by outcome",
    "allele_component_errors_total": "Operations of a component that failed, by error type",
    "allele_component_heartbeats_total": "Heartbeats a component sent",
    "allele_component_error_rate": "Share of a component's recent operations that failed (0-1)",
    "allele_component_heartbeat_age_seconds": "Seconds since a component's last heartbeat",
    "allele_monitoring_errors_total": "Errors inside the monitoring of a component",
    "allele_evolution_best_fitness": "Best fitness of the latest generation",
    "allele_evolution_mean_fitness": "Mean fitness of the latest generation",
    "allele_evolution_worst_fitness": "Worst fitness of the latest generation",
    "allele_evolution_diversity": "Genetic diversity of the latest generation",
    "allele_evolution_generation": "Index of the latest generation",
    "allele_evolution_evaluations_total": "Fitness evaluations run",
    "allele_kraken_sequences_total": "Sequences the Kraken reservoir processed",
    "allele_kraken_steps_total": "Time steps the Kraken reservoir processed",
    "allele_kraken_memory_size": "Entries in the Kraken memory buffer",
    "allele_kraken_memory_capacity": "Capacity of the Kraken memory buffer",
    "allele_kraken_memory_consolidations": "Consolidations of the Kraken memory buffer",
    "allele_kraken_activation_mean": "Mean activation of the Kraken reservoir",
    "allele_kraken_activation_std": "Standard deviation of the Kraken reservoir's activations",
    "allele_kraken_activation_max_abs": "Largest absolute activation of the Kraken reservoir",
    "allele_agent_tokens_total": "Tokens the agent's model produced or consumed",
    "allele_agent_ttft_seconds": "Time to the first token of an agent's reply, in seconds",
    "allele_agent_tokens_per_second": "Token throughput of the agent's replies",
    "allele_system_cpu_percent": "CPU use of the whole machine, percent",
    "allele_system_memory_percent": "Memory in use on the machine, percent",
    "allele_system_memory_used_bytes": "Memory in use on the machine, bytes",
    "allele_system_disk_percent": "Disk space in use, percent",
    "allele_system_disk_read_bytes_total": "Bytes read from the machine's disks",
    "allele_system_disk_write_bytes_total": "Bytes written to the machine's disks",
    "allele_system_network_sent_bytes_total": "Bytes the machine sent over the network",
    "allele_system_network_received_bytes_total": "Bytes the machine received over the network",
    "allele_process_cpu_percent": "CPU use of the monitored process, percent of one core",
    "allele_process_rss_bytes": "Resident memory of the monitored process, bytes",
    "allele_process_threads": "Threads of the monitored process",
    "allele_gpu_memory_used_bytes": "Memory in use on a GPU, bytes",
    "allele_gpu_utilization_percent": "Utilisation of a GPU, percent",
}

_UNITS = (
    ("_seconds", "in seconds"),
    ("_bytes", "in bytes"),
    ("_percent", "percent"),
    ("_ratio", "a ratio"),
)


def describe(name: str, kind: MetricType) -> str:
    """The HELP text of metric ``name``: its description when the package records it, else
    what can be told from its kind and unit suffix."""
    known = _KNOWN.get(name) or _KNOWN.get(name.removesuffix("_total"))
    if known is not None:
        return known
    base = name.removesuffix("_total")
    unit = next((text for suffix, text in _UNITS if base.endswith(suffix)), None)
    what = {
        MetricType.COUNTER: "Running total",
        MetricType.GAUGE: "Latest value",
        MetricType.HISTOGRAM: "Distribution of observed values",
        MetricType.TIMER: "Distribution of measured durations",
        MetricType.DISTRIBUTION: "Distribution of observed values",
    }.get(kind, "Value")
    return f"{what} of {name}" + (f", {unit}" if unit else "") + " (recorded with Allele)"
