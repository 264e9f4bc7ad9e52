"""Audit: one JSON line per decision (OPA's decision log is the model)."""
