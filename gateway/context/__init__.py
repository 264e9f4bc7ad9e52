"""The request context: what a request *is*, before anyone decides on it.

normalise   raw target -> one canonical path (+ raw query); ambiguity is refused (400)
catalogue   rules/operations.yaml: (method, path) -> Endpoint (operation, resource, records)
routes      path templates and the segment trie the catalogue matches with
client_ip   TCP peer + forwarding headers from trusted proxies only -> client address
geo         client address -> country (embedded iptocc database or a MaxMind file)
"""

from gateway.context.catalogue import Catalogue, load_catalogue
from gateway.context.client_ip import ClientIPResolver
from gateway.context.geo import GeoConfigError, GeoResolver
from gateway.context.normalise import normalise_target, parse_query
from gateway.context.routes import encode_segment, expand, parse_template

__all__ = [
    "Catalogue",
    "ClientIPResolver",
    "GeoConfigError",
    "GeoResolver",
    "encode_segment",
    "expand",
    "load_catalogue",
    "normalise_target",
    "parse_query",
    "parse_template",
]
