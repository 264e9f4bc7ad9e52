"""The realistic profile of democrm: the shapes a real CRM (a Django REST API) answers with.

Why: the classic profile's shapes were designed alongside the gateway, and a gateway that passed
every test against them still leaked in front of a real CRM. This profile exists so the gateway's
enforcement is tested against what real CRMs do:

* UUID ids everywhere; people are CRM *profiles* (``profile_id(user)``), teams are team records
  (``team_id(team)``); owners appear as a bare UUID (a lead's ``created_by``), an ``{id, email}``
  object (an account's ``created_by``) or a list of ``{id, email, name}`` (``assigned_to``);
* ``/api/v2/leads/`` and ``/api/v2/accounts/``, every route with a trailing slash (404 without);
* lists with the records under two keys, CRM-wide ``count`` and ``totals``, a side list of every
  user, sideloaded accounts (``included``); a lead's view with full ``related`` leads; nested
  contacts with their own assignees; ``fields`` / ``expand`` / ``include`` query options;
* writes as JSON, urlencoded (repeated and PHP ``[]`` keys) or multipart bodies, owners as ids,
  e-mails, objects, single strings or the ``owner`` / ``owner_id`` aliases; the caller is the
  default assignee; teams derived from assignees; a CRM-side "escalate" re-assignment;
* bulk update / delete and a CSV export with human headers and e-mail addresses.

Same login, same ``REQUESTS_SEEN`` recording as the classic profile (``democrm.middleware``).
Build it with ``create_realistic_app()`` or ``democrm.app.create_app(profile="realistic")``; run it
with ``python -m democrm --profile realistic``. Records live in memory (``app[REALISTIC_STORE]``).
"""

from democrm.realistic.app import create_realistic_app
from democrm.realistic.people import PROFILES, TEAMS, profile_id, team_id
from democrm.realistic.store import REALISTIC_STORE, RealisticStore

__all__ = ["PROFILES", "REALISTIC_STORE", "TEAMS", "RealisticStore", "create_realistic_app", "profile_id", "team_id"]
