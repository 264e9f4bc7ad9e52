"""Decisions cached by the facts their rules read (issue 14: a repeated caller's decision in ~2 µs).

A decision is a function of the facts of the request that its operation's rules read, and of
nothing else: every criterion declares what it reads (``Criterion.facts``: ``role``, ``client_ip``,
``time@Europe/Paris`` as a local weekday and minute, ``query:page_size``, ...), and the engine
itself reads the caller's roles (scopes), ``mfa`` (step-up) and the grants that apply. The key is
those values, for this operation:

    (operation, roles, mfa, (value of each fact the operation's rules read, by fact name),
     ((grant, its outcome now), ...))

- **Time** takes part only as the criteria read it: a time window reads the local weekday and
  minute in its zone (windows are whole minutes), so a decision is reused within that minute and
  never across a boundary any window can name. A grant is in the key by value *with its outcome at
  this instant* (``active`` / ``expired`` / ``not yet``, ``mfa-required``), so it lapses on the
  second its ``until`` says, cache or not.
- **Approved access requests** (gateway.access) are grants passed in by the pipeline: in the key by
  value, so one approved or revoked is seen by the very next request.
- **Rule reloads**: the cache belongs to the ``PolicyEngine`` of one RuleSet snapshot; a reload
  builds a new engine, and the old cache goes with the old rules.
- A criterion that does not declare its facts makes its operations uncacheable (fail closed).
  Inactive users, unknown operations and anonymous callers are refused before any lookup.

Bounded LRU; a hit moves the entry to the end, an insert beyond the bound drops the oldest.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING

from gateway.model import Decision, Identity, RequestContext

if TYPE_CHECKING:
    from gateway.policy.compiled import CompiledGrant, CompiledPolicy, CompiledRule, OperationRules
    from gateway.policy.conditions import Leaf

DECISION_CACHE_SIZE = 4096
Reader = Callable[[RequestContext], Hashable]


class DecisionCache:
    """Per engine: the readers of each operation's facts, and the decisions by key."""

    def __init__(self, policy: CompiledPolicy, size: int = DECISION_CACHE_SIZE):
        self.policy = policy
        self.size = size
        self.hits = self.misses = 0
        self._decisions: OrderedDict[Hashable, Decision] = OrderedDict()
        # operation -> the readers of the facts its rules read (by fact name), None: not cacheable
        self._readers: dict[str, tuple[Reader, ...] | None] = {}

    def key(
        self, ctx: RequestContext, identity: Identity, operation: str, grants: tuple[CompiledGrant, ...]
    ) -> Hashable | None:
        """The key of this request's decision; None when it must not be cached."""
        if self.size <= 0:
            return None
        if operation in self._readers:
            readers = self._readers[operation]
        else:
            readers = self._readers[operation] = readers_of(self.policy.for_operation(operation))
        if readers is None:
            return None
        facts = tuple([read(ctx) for read in readers])
        applying = (*self.policy.for_operation(operation).grants.get(identity.user.id, ()), *grants)
        outcomes = tuple([(grant, grant.check(ctx, identity)) for grant in applying]) if applying else ()
        return (operation, identity.roles, identity.mfa, facts, outcomes)

    def get(self, key: Hashable) -> Decision | None:
        found = self._decisions.get(key)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        try:
            self._decisions.move_to_end(key)
        except KeyError:  # dropped meanwhile by another thread (the CLI's): still the right answer
            pass
        return found

    def put(self, key: Hashable, decision: Decision) -> None:
        decisions = self._decisions
        decisions[key] = decision
        while len(decisions) > self.size:
            try:
                decisions.popitem(last=False)
            except KeyError:
                break

    def __len__(self) -> int:
        return len(self._decisions)


def readers_of(rules: OperationRules) -> tuple[Reader, ...] | None:
    """The readers of every fact an operation's rules read, one per fact name (sorted, so the key
    has one shape); None when a criterion did not declare its facts."""
    by_name: dict[str, Reader] = {}
    for rule in (*rules.denies, *rules.allows, *rules.shadows):
        for leaf in _leaves(rule):
            declared = leaf.criterion.facts()
            if declared is None:
                return None
            for name, read in declared:
                by_name.setdefault(name, read)
    return tuple(by_name[name] for name in sorted(by_name))


def _leaves(rule: CompiledRule) -> Iterable[Leaf]:
    yield from rule.leaves
    if rule.approval_when is not None:
        yield from rule.approval_when.leaves()
