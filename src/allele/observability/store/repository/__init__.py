"""The repository: the one class that reads and writes the observability tables."""
