"""The client side of the ``datamig`` command line: subcommands that talk to the HTTP API.

``services/cli.py`` stays the entry point; it hands ``jobs``, ``run`` and ``history``
to :func:`services.cliapp.commands.dispatch`. These commands need no server settings,
only ``DM_API_URL`` and (optionally) ``DM_API_TOKEN``.
"""
