"""democrm: a small legacy-style CRM HTTP API (aiohttp + SQLite) that the gateway is put in front of.

``democrm.app.create_app()`` builds it; ``python -m democrm`` runs it. See docs/CONTRACTS.md.
A second profile with the shapes of a real (Django REST) CRM is ``democrm.realistic``
(``create_app(profile="realistic")``, ``python -m democrm --profile realistic``).
"""
