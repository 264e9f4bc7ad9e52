"""Anomaly detection for the CRM Access Gateway.

This package imports nothing from ``gateway``: it works on audit records (plain dicts, the
gateway's audit-line format) and counter snapshots, so the same code serves live scoring and
replay of recorded audit logs, and training and serving cannot drift apart.
"""
