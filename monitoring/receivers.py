"""Signal receivers (filled in by the issue, metrics and log features)."""
