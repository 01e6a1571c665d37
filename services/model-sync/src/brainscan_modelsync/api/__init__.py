"""HTTP routes of model-sync: models and artifacts, webhooks, health, metrics."""
