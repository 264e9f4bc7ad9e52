"""Response stage: enforce a Decision's obligations (data scope, field masks) on a CRM response.

formats   Content-Encoding (gzip/deflate, bounded), Content-Type, JSON, CSV and XML parse/write
xmldoc    XML and SOAP answers as dict trees (safe parsing, lists from declared paths, writing)
scope     is a record in the caller's scope (owner, team, region, ...)
mask      remove / redact / hash fields
filter    the whole pass: apply_obligations, count_records, records_of
"""

from gateway.response.filter import FilterResult, apply_obligations, count_records, records_of
from gateway.response.scope import record_in_scope

__all__ = ["FilterResult", "apply_obligations", "count_records", "record_in_scope", "records_of"]
