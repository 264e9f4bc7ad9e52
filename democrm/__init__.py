"""democrm: a small legacy-style CRM HTTP API (aiohttp + SQLite) that the gateway is put in front of.

``democrm.app.create_app()`` builds it; ``python -m democrm`` runs it. See docs/CONTRACTS.md.
"""
