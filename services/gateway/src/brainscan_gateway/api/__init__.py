"""HTTP layer: routes, dependencies, response schemas and error handlers."""
