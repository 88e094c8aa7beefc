"""Optional adapters to other libraries; each imports its library lazily, never from the core."""
