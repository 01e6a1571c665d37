"""The inference service as the gateway sees it: the v2 client, its transport on aiohttp's pool,
the circuit breaker in front of it, and the served model's manifest."""
