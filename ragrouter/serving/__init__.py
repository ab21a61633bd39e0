"""The router in the request path: the gateway and what it learns from outcomes."""
