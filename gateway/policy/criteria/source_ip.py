"""``source_ip: {in: [10.0.0.0/8, $office_networks]}`` -- the client IP against CIDR blocks.

The client IP is the one the context stage resolved (trusted proxies only); no IP is ``None``.
An IPv4-mapped IPv6 address (``::ffff:10.1.2.3``) is compared as the IPv4 address it carries, so a
dual-stack listener cannot be used to step around an IPv4 rule.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from gateway.model import IPAddress, RequestContext
from gateway.policy.criteria import register
from gateway.policy.criteria.base import CompileEnv, Criterion, Fact, Item, Outcome, membership_values

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(item: Item, env: CompileEnv) -> Network | None:
    try:
        if not isinstance(item.value, str):
            raise ValueError("not a string")
        return ipaddress.ip_network(item.value, strict=True)
    except ValueError as exc:
        env.errors.append(item.error(f"bad CIDR {item.value!r}: {exc}"))
        return None


@register
class SourceIpCriterion(Criterion):
    name = "source_ip"
    ok, fail, unknown = "source-ip-ok", "source-ip-unauthorized", "source-ip-unknown"
    specificity = 3

    def __init__(self, negated: bool, networks: frozenset[Network]):
        self.negated = negated
        # (version, network bits as int, netmask as int): one AND and compare per network.
        self.nets = tuple(sorted((n.version, int(n.network_address), int(n.netmask)) for n in networks))

    @classmethod
    def compile(cls, raw: Any, env: CompileEnv) -> Criterion | None:
        parsed = membership_values(raw, env, lambda item: parse_network(item, env))
        return cls(*parsed) if parsed else None

    def facts(self) -> tuple[Fact, ...]:
        return (("client_ip", client_ip_of),)

    def evaluate(self, ctx: RequestContext) -> Outcome:
        ip = ctx.client_ip
        if ip is None:
            return None
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        version, value = ip.version, int(ip)
        hit = any(v == version and value & mask == net for v, net, mask in self.nets)
        return hit != self.negated


def client_ip_of(ctx: RequestContext) -> IPAddress | None:
    return ctx.client_ip
