"""HTTP layer: Open Inference Protocol (v2) routes, error mapping and metrics endpoint."""
