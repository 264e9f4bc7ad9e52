"""CRM Access Gateway: an access-control reverse proxy for legacy CRM HTTP APIs."""

__version__ = "0.1.0"
