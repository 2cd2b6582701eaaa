"""How the commands find a running ``advanced-notes dev`` in the same folder.

The dev server holds an exclusive lock on ``instance/embedded.lock`` while it runs and
writes ``instance/embedded-client.json`` (the discovery file): its API URL, a token, its
pid, and the settings it runs with (SQLite file, emulator endpoint, bucket, the
emulator's dummy keys, and every app setting of the server's environment, such as
``WEBHOOK_URLS``). Every command then uses that stack when no setting says otherwise:
``upload``/``play``/``note-audio`` take the URL and token, the operator commands
(``storage check``, ``sweep``, ``db``, ``token``, ``webhooks``, ...) build the app with the
same settings (:mod:`advanced_notes.tools.context`).

The lock, not the pid, tells a live server from a stale file: the kernel drops a lock
when its process dies, however it died, and a pid can be reused.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

#: Written at start, removed at stop; read by every command.
CLIENT_FILE = "embedded-client.json"
#: Held (flock, exclusive) by the running dev server.
LOCK_FILE = "embedded.lock"
#: Variables that, when set, say which stack to use: then nothing is discovered.
STACK_SETTINGS = (
    "APP_ENV",
    "ENV",
    "FLASK_ENV",
    "DATABASE_URL",
    "S3_ENDPOINT_URL",
    "S3_PROVIDER",
    "S3_BUCKET",
    "S3_BUCKET_NAME",
    "AWS_ACCESS_KEY_ID",
    "S3_ACCESS_KEY",
)


#: What a command that needs the dev stack says when none runs here and no setting names another.
NO_DEV_SERVER = "no running `advanced-notes dev` found here; start `make dev`"


class DiscoveryError(RuntimeError):
    """The discovery file or lock is unusable; the message is one line for the user."""


@dataclass(frozen=True)
class DevStack:
    """What a running dev server published: ``api`` URL, bearer ``token``, ``pid``, ``settings``."""

    api: str
    token: str
    pid: int
    settings: dict[str, Any] = field(default_factory=dict)


def instance_dir(base: Path | None = None) -> Path:
    """The folder the dev server keeps its files in: ``./instance`` (or under ``base``)."""
    return (base or Path.cwd()) / "instance"


class StackLock:
    """The dev server's claim on an instance folder (an exclusive ``flock``).

    Args:
        folder: the instance folder (created when missing).
    Raises:
        DiscoveryError: from :meth:`acquire` when another live dev server holds it.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock without waiting; raise :class:`DiscoveryError` naming the holder."""
        self.folder.mkdir(parents=True, exist_ok=True)
        f = open(self.folder / LOCK_FILE, "a+")  # noqa: SIM115 (held for the process's life)
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            running = read_stack(self.folder)
            where = f" (pid {running.pid}, API {running.api})" if running else ""
            raise DiscoveryError(
                f"another `advanced-notes dev` is running from this folder{where}: "
                "stop it first, or start this one from another folder"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._file = f

    def release(self) -> None:
        """Drop the lock (the kernel also drops it when the process dies)."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def is_locked(folder: Path) -> bool:
    """True while a live dev server holds ``folder``'s lock."""
    path = folder / LOCK_FILE
    if not path.exists():
        return False
    with open(path) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


def write_stack(folder: Path, stack: DevStack, environ: Mapping[str, str] | None = None) -> Path:
    """Write the discovery file (readable by the owner only: it holds a token and secrets).

    The settings published are the ones the server runs with: ``stack.settings`` over
    the app settings of the server's environment (``environ``, default ``os.environ``;
    e.g. its ``WEBHOOK_URLS`` and ``WEBHOOK_SECRET``), so every command acts as the server does.

    Returns:
        the file's path.
    """
    from advanced_notes.settings import Settings

    env = os.environ if environ is None else environ
    names = {name for variables in Settings.variable_names().values() for name in variables}
    settings = {name: value for name, value in env.items() if name in names and value.strip()}
    settings.update(stack.settings)
    path = folder / CLIENT_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"api": stack.api, "token": stack.token, "pid": stack.pid, "settings": settings}, f)
    return path


def remove_stack(folder: Path) -> None:
    """Remove the discovery file (at stop)."""
    (folder / CLIENT_FILE).unlink(missing_ok=True)


def read_stack(folder: Path) -> DevStack | None:
    """The discovery file's content, or None when there is none. Does not check liveness."""
    path = folder / CLIENT_FILE
    try:
        data = json.loads(path.read_text())
        return DevStack(
            api=str(data["api"]),
            token=str(data["token"]),
            pid=int(data.get("pid", 0)),
            settings=data.get("settings", {}),
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise DiscoveryError(
            f"{path} is not a dev server's discovery file ({exc.__class__.__name__}); delete it"
        ) from None


def live_stack(folder: Path | None = None) -> DevStack | None:
    """The running dev server of ``folder`` (default ``./instance``), or None when none runs.

    Raises:
        DiscoveryError: a discovery file is there but its server is gone (one line that
            says so and what to do).
    """
    folder = folder or instance_dir()
    stack = read_stack(folder)
    if stack is None:
        return None
    if not is_locked(folder):
        raise DiscoveryError(
            f"stale {folder / CLIENT_FILE}: the dev server that wrote it (pid {stack.pid}) is not running; "
            "start `advanced-notes dev`, or delete the file"
        )
    return stack


def names_stack(env: Mapping[str, str]) -> bool:
    """True when ``env`` sets any of :data:`STACK_SETTINGS`: then that stack is used, nothing is discovered."""
    return any(str(env.get(name) or "").strip() for name in STACK_SETTINGS)


def stack_settings(env: Mapping[str, str], folder: Path | None = None) -> dict[str, Any] | None:
    """The running dev server's settings when ``env`` names no stack of its own, else None.

    Args:
        env: the process environment (after ``.env`` is loaded).
        folder: the instance folder (default ``./instance``).
    Returns:
        settings by variable name for ``create_app``, or None (use ``env`` as it is).
    Raises:
        DiscoveryError: a stale discovery file (see :func:`live_stack`).
    """
    if names_stack(env):
        return None
    stack = live_stack(folder)
    return dict(stack.settings) if stack else None
