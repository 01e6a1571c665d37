"""What every request passes before a route: the ASGI middleware (upload limit, security
headers, request metrics) and the access checks the routes depend on (API keys, rate limit)."""
