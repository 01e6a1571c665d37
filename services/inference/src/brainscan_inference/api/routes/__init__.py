"""One module per resource: infer, models (metadata and readiness), repository, health, metrics."""
