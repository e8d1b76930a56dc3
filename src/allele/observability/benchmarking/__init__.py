"""Matrix benchmarking: suites, runner, statistics, comparison, storage and reports."""
