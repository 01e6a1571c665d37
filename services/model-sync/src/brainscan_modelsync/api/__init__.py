"""HTTP layer: routes (one module per resource), dependencies and error handlers."""
