"""How an operator command gets the app it acts on, built with only the settings it uses.

Under ``flask --app wsgi`` the app is ``wsgi.app``, built before any command runs. Under
``advanced-notes`` each command builds its own app when it runs (never for ``--help``):

1. the environment names a stack (``DATABASE_URL``, ``S3_*``, ``APP_ENV``, ...: see
   :data:`~advanced_notes.tools.discovery.STACK_SETTINGS`): that stack;
2. else a running ``advanced-notes dev`` in this folder: its settings, the ones it runs
   with (:func:`~advanced_notes.tools.discovery.stack_settings`);
3. else a command that needs only a token key finds it in the environment
   (``AUTH_JWT_SECRET``): ``token`` mints with it;
4. else the command stops with :data:`~advanced_notes.tools.discovery.NO_DEV_SERVER`.

A command that verifies and mints no tokens (``storage check``, ``sweep``, ...) is built
with ``tokens=False``: no token key is required for it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from functools import update_wrapper
from typing import Any, TypeVar

import click
from flask import Flask, current_app
from flask.cli import ScriptInfo

F = TypeVar("F", bound=Callable[..., Any])

#: Variables that give ``token`` a key to mint with when no stack is named.
TOKEN_SETTINGS = ("AUTH_JWT_SECRET",)


class UserError(click.ClickException):
    """A mistake the user can fix (configuration, a taken port, a bad argument): one line, exit 2.

    click prints ``Error: <message>`` without a traceback; 2 is click's own status for
    usage errors.
    """

    exit_code = 2


def command_app(*, tokens: bool, environ: Mapping[str, str] | None = None) -> Flask:
    """The app an ``advanced-notes`` command acts on (the rules in this module's docstring).

    Args:
        tokens: whether the command mints or verifies tokens (then a token key is required).
        environ: the process environment (default ``os.environ``, after ``.env``).
    Returns:
        the app, its "app created" line logged at DEBUG (commands print results, not logs).
    Raises:
        UserError: no stack is named and no dev server runs here, a stale discovery file,
            or bad settings (the ConfigError's message naming each bad variable); exit 2.
    """
    from advanced_notes.app import create_app
    from advanced_notes.settings import ConfigError
    from advanced_notes.tools.discovery import NO_DEV_SERVER, DiscoveryError, names_stack, stack_settings

    env = os.environ if environ is None else environ
    try:
        overrides = stack_settings(env)
    except DiscoveryError as exc:
        raise UserError(str(exc)) from None
    if overrides is None and not names_stack(env):
        has_key = any(str(env.get(name) or "").strip() for name in TOKEN_SETTINGS)
        if not (tokens and has_key):
            raise UserError(f"{NO_DEV_SERVER} (or set the settings of another stack: docs/settings.md)")
    try:
        return create_app(overrides, tokens=tokens, start_log_level=logging.DEBUG)
    except ConfigError as exc:
        # The message names every bad variable; a traceback would only bury it.
        raise UserError(str(exc)) from None


def with_stack(*, tokens: bool = False) -> Callable[[F], F]:
    """Run the decorated command inside the app it acts on (:func:`command_app`).

    In place of Flask's ``with_appcontext``: under ``flask --app wsgi`` (or a test's
    ``app.test_cli_runner()``) the app that is already there is used as it is.

    Args:
        tokens: the command mints or verifies tokens (``token``); False for the others.
    """

    def decorator(f: F) -> F:
        @click.pass_context
        def wrapper(ctx: click.Context, /, *args: Any, **kwargs: Any) -> Any:
            if not current_app:
                info = ctx.find_object(ScriptInfo)
                app = info.load_app() if info is not None else command_app(tokens=tokens)
                ctx.with_resource(app.app_context())
            return ctx.invoke(f, *args, **kwargs)

        return update_wrapper(wrapper, f)  # type: ignore[return-value]

    return decorator
