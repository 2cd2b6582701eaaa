"""The ``advanced-notes`` command, and the commands of ``flask --app wsgi``.

Two kinds of commands, in two modules:

- the operator's (:mod:`~advanced_notes.tools.operator_commands`: ``db``, ``token``,
  ``sweep``, ``storage``, ``dev``; :mod:`~advanced_notes.tools.events`: ``webhooks``,
  ``events``; :mod:`~advanced_notes.tools.processing`: ``processing``, ``worker``), which
  act on a stack's database and bucket and build the app with only the settings they use;
- the end user's (:mod:`~advanced_notes.tools.client_commands`: ``upload``, ``play``,
  ``note-audio``), which talk to a running server over HTTP.

``advanced-notes`` is a plain click group: its options are its own (``--version``,
``--help``), and ``--help`` builds no app, so it works with no settings at all.
"""

from __future__ import annotations

import os
import sys

import click
from flask import Flask

from advanced_notes import __version__
from advanced_notes.tools import events, processing
from advanced_notes.tools.client_commands import COMMANDS as CLIENT_COMMANDS
from advanced_notes.tools.context import UserError
from advanced_notes.tools.operator_commands import COMMANDS as OPERATOR_COMMANDS
from advanced_notes.tools.operator_commands import dev_command

__all__ = ["create_cli_app", "main", "register_app_commands"]


def _load_dotenv() -> None:
    """Load ``.env`` from the working folder or the nearest one above it; the environment wins."""
    from dotenv import find_dotenv, load_dotenv

    path = find_dotenv(".env", usecwd=True)
    if path:
        load_dotenv(path, override=False, encoding="utf-8")


@click.group(help="Advanced Notes audio clips.", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="advanced-notes", message="%(prog)s %(version)s")
def main() -> None:
    # Here rather than at import: a group's callback runs before its subcommand's options
    # are read, so ADVANCED_NOTES_TOKEN and the settings in .env reach them; --help skips it.
    _load_dotenv()


def _operator_commands() -> tuple[click.Command, ...]:
    return (*OPERATOR_COMMANDS, events.webhooks_group, events.events_group, *processing.COMMANDS)


for _command in (*_operator_commands(), dev_command, *CLIENT_COMMANDS):
    main.add_command(_command)


def register_app_commands(app: Flask) -> None:
    """Add the operator commands to ``flask --app wsgi`` (they use that app as it is)."""
    for command in _operator_commands():
        app.cli.add_command(command)


def create_cli_app() -> Flask:
    """The app of ``flask --app wsgi`` (and gunicorn's ``wsgi:app``), with the operator commands.

    When the environment names no stack (no DATABASE_URL, S3_ENDPOINT_URL, S3_BUCKET,
    APP_ENV, ...) and an ``advanced-notes dev`` runs from this folder, the app gets that
    server's settings (:mod:`advanced_notes.tools.discovery`).

    Raises:
        UserError: bad settings (the ConfigError's message, exit status 2).
    """
    from advanced_notes.app import create_app
    from advanced_notes.settings import ConfigError
    from advanced_notes.tools.discovery import DiscoveryError, stack_settings

    try:
        overrides = stack_settings(os.environ)
    except DiscoveryError as exc:
        click.echo(f"warning: {exc}", err=True)
        overrides = None
    try:
        app = create_app(overrides)
    except ConfigError as exc:
        # The message names every bad variable; a traceback would only bury it.
        raise UserError(str(exc)) from None
    register_app_commands(app)
    return app


if __name__ == "__main__":  # pragma: no cover
    main(prog_name=os.path.basename(sys.argv[0]))
