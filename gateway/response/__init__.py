"""Response stage: enforce a Decision's obligations (data scope, field masks, write scope).

On the CRM's answer (stage 5):

formats          Content-Encoding (gzip/deflate, bounded), Content-Type, JSON, CSV and XML parse/write
xmldoc           XML and SOAP answers as dict trees (safe parsing, lists from declared paths, writing)
scope            is a record in the caller's scope (owner, team, region, ...)
mask             remove / redact / hash fields
filter           the whole pass: apply_obligations, count_records, records_of
stage            the answer as I/O: buffered and filtered, or streamed

On a write, before gateway.upstream sends it (stage 4 runs these; nothing is sent until they pass):

request_contract check_request: the query and body a decided request may carry (also ``crmgw explain``)
writes           the body of a create/update: writable keys, owners and teams inside the caller's scope
xmlcall          an XML (SOAP) body is exactly the call the endpoint declares
write_targets    the records an update/delete names, fetched from the CRM and held to the scope

The dependency is one-way: this package uses gateway.upstream (forwarding, headers, the request body
as read) and gateway.upstream imports nothing from here; tests/test_import_cycles.py keeps it so.
"""

from gateway.response.filter import FilterResult, apply_obligations, count_records, records_of
from gateway.response.scope import record_in_scope

__all__ = ["FilterResult", "apply_obligations", "count_records", "record_in_scope", "records_of"]
