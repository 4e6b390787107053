"""HTTP API: cases, events, evidence, cameras, health and metrics."""
