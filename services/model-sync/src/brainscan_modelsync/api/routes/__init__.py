"""One module per resource: models (and their artifacts), webhooks, health, metrics."""
