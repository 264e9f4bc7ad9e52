"""Upstream: sending a decided request to the CRM.

forward         the pooled client session, the URL, sending, reading an answer within bounds
headers         header hygiene in both directions (allow-list towards the CRM)
bodies          the request body as received, read (parsed once) the way the CRM will read it
attribution     who acted, told to the CRM (headers naming the user, per-user credentials)
user_secrets    the per-user credential file behind attribution

Deciding whether a request may be sent (the body contract, the write scope, the target records) is
gateway.response's: that package imports this one, never the other way round.
"""
