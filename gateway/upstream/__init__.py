"""Upstream: the pooled client session, header hygiene and forwarding to the CRM."""
