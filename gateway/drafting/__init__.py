"""Drafting a catalogue (operations.yaml) from what the CRM already says about itself.

``crmgw catalogue draft`` starts an admin off instead of leaving them with a blank file:

    openapi      read an OpenAPI 3.x document (JSON or YAML): operations, $refs, schemas
    naming       resource names, actions and typed parameters guessed from methods and paths
    answers      where the records are in a response schema, and what else an answer carries
    from_openapi the draft catalogue from an OpenAPI document
    from_audit   the requests a running gateway refused as ``operation-unknown``, as templates
    render       the draft as YAML, with a comment per entry on what was guessed or left out
    cli          the ``crmgw catalogue draft`` subcommand

Nothing here decides what the draft cannot know (who owns a record, what a custom action does):
those places get a ``"TODO: <reason>"`` value (gateway.context.todos), so the catalogue loader
refuses the draft until an admin has decided each one.
"""
