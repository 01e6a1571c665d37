"""One module per resource: predictions, model, health, metrics, the page and the docs."""
