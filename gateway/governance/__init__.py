"""Governance: analysts' decisions about users that the request path honours at once.

    overlay.py   Suspension, the local view (no I/O) and its Redis store (hash + pub/sub)
    guard.py     GovernanceGuard: the check right after identity (``user-suspended``; ``503
                 governance-unavailable`` until the shared overlay was loaded once) on the proxy,
                 the console and the admin APIs, kept fresh by pub/sub and a periodic reload;
                 its health for /_gw/health
    actions.py   suspend / unsuspend / block for a period / require step-up, each audited
                 (governance journal + log line + the alert's history when taken from an alert)
    cli.py       ``crmgw users``: the directory with the overlay (suspended, blocked, step-up)

The rule files stay the source of truth for who exists and what they may do: the overlay only
*removes* access (fail closed), it never grants. A suspension lasts until lifted or until its
``until``; it reaches every replica through Redis like the anomaly blocks
(gateway/signals/enforcement.py).
"""
