"""The defaults of a described request, for ``crmgw explain`` and the console's explain form.

A module of its own, importing nothing, so that building ``crmgw``'s parser (which shows them in
``--help``) does not import gateway.explain and, through it, the whole pipeline.
gateway.explain re-exports both names.
"""

DEFAULT_METHOD = "GET"
# The admin's own machine: a described request with no address given comes from where the admin
# sits. An explicitly empty address (``--ip ""``, a cleared form field) means "unknown".
DEFAULT_IP = "127.0.0.1"
