"""The end user's commands: ``upload`` (and ``--resume``), ``play``, ``note-audio``.

Thin wrappers around :class:`advanced_notes.client.AudioClipsClient` that talk to a
running server over HTTP and need none of the server's settings: ``--api``/``--token``
(or ``ADVANCED_NOTES_API``/``ADVANCED_NOTES_TOKEN``), else the running ``advanced-notes
dev`` of this folder (:mod:`advanced_notes.tools.discovery`).
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from advanced_notes.tools.context import UserError

if TYPE_CHECKING:
    from tqdm import tqdm

    from advanced_notes.client import AudioClipsClient

F = TypeVar("F", bound=Callable[..., Any])
#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130
#: Seconds to ask for the clip's state after Ctrl-C during complete.
OUTCOME_TIMEOUT_SECONDS = 5.0


def _client(api: str | None, token: str | None, timeout: float | None = None) -> AudioClipsClient:
    from advanced_notes.client import AudioClipsClient
    from advanced_notes.tools.discovery import NO_DEV_SERVER, DiscoveryError, live_stack

    if not (api and token):  # the running dev server's, unless both are given
        try:
            stack = live_stack()
        except DiscoveryError as exc:
            raise UserError(str(exc)) from None
        if stack is not None:
            api, token = api or stack.api, token or stack.token
    if not token:
        raise UserError(f"{NO_DEV_SERVER} (or pass --api and --token, or set ADVANCED_NOTES_TOKEN)")
    base = api or "http://127.0.0.1:8000"
    return AudioClipsClient(base, token) if timeout is None else AudioClipsClient(base, token, timeout=timeout)


def _client_options(command: F) -> F:
    command = click.option(
        "--token", envvar="ADVANCED_NOTES_TOKEN", default=None, help="Bearer token [env ADVANCED_NOTES_TOKEN]."
    )(command)
    return click.option(
        "--api", envvar="ADVANCED_NOTES_API", default=None, help="API base URL [env ADVANCED_NOTES_API]."
    )(command)


def _field_messages(details: Any) -> str:
    """``{"note_id": ["Shorter than minimum length 1."]}`` -> ``note_id: Shorter than minimum length 1.``"""
    if not isinstance(details, dict):
        return ""
    parts = []
    for name, messages in details.items():
        if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
            parts.append(f"{name}: {' '.join(messages)}")
        elif isinstance(messages, dict):
            parts.extend(f"{name}.{inner}" for inner in _field_messages(messages).split("; ") if inner)
        elif isinstance(messages, str | int):
            parts.append(f"{name}: {messages}")
    return "; ".join(parts)


def _api_errors(fn: F) -> F:
    """Turn client errors into one line: API answers exit 1, a server out of reach exits 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import requests

        from advanced_notes.client import ApiClientError

        try:
            return fn(*args, **kwargs)
        except ApiClientError as exc:
            fields = _field_messages(exc.details) if exc.code == "validation_error" else ""
            raise click.ClickException(f"{exc} ({fields})" if fields else str(exc)) from exc
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        except requests.ConnectionError as exc:
            url = exc.request.url.split("?", 1)[0] if exc.request is not None and exc.request.url else "the API"
            raise UserError(
                f"cannot connect to {url}: is the server running? (start `advanced-notes dev`, or pass --api)"
            ) from None
        except requests.Timeout:
            raise UserError("the server did not answer in time") from None

    return cast(F, wrapper)


def _print_playback(playback: dict[str, Any]) -> None:
    click.echo(f"\nplayback URL (expires {playback['expires_at']}):\n{playback['url']}")


class _Progress:
    """The upload's progress bar, drawn from the API's first answer on: while the API has
    not answered, a bar at 0% would only suggest the upload has started.

    Args:
        total: the file's size, bytes; quiet: never draw it.
    """

    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet = total, quiet
        self.bar: tqdm[Any] | None = None

    def start(self) -> None:
        """Draw the bar (once; nothing with ``quiet``)."""
        from tqdm import tqdm

        if self.bar is None and not self.quiet:
            self.bar = tqdm(total=self.total, unit="B", unit_scale=True, unit_divisor=1024, desc="PUT", file=sys.stderr)

    def update(self, sent: int) -> None:
        """Count ``sent`` bytes."""
        self.start()
        if self.bar is not None:
            self.bar.update(sent)

    def close(self) -> None:
        """Remove nothing, stop redrawing: later lines print below the bar."""
        if self.bar is not None:
            self.bar.close()


def _say(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)


@click.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--note-id", default=None, help="Attach the clip to this note.")
@click.option("--mime-type", default=None, help="Override the type detected from the file.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--multipart-threshold",
    default=16 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(1),
    help="Bytes from which FILE is uploaded in parts (resumable).",
)
@click.option("--parallel", default=4, show_default=True, type=click.IntRange(1, 32), help="Parts sent at once.")
@click.option(
    "--resume",
    "resume_clip_id",
    default=None,
    help="Finish the interrupted upload of this clip (in parts: only the parts the store lacks).",
)
@_client_options
@_api_errors
def upload_command(
    file: str,
    note_id: str | None,
    mime_type: str | None,
    api: str | None,
    token: str | None,
    quiet: bool,
    multipart_threshold: int,
    parallel: int,
    resume_clip_id: str | None,
) -> None:
    """Upload FILE: create an upload session, PUT to the bucket, complete; print clip and playback URL.

    Declares the file's type, size, duration and SHA-256; retries transient failures and
    re-signs an expired PUT URL. From --multipart-threshold bytes on, FILE goes up in
    parts, --parallel at a time; if interrupted (Ctrl-C included), run the printed command
    with --resume CLIP_ID to send only the parts the store lacks. Without --api/--token it
    uses the running `advanced-notes dev` server's.
    """
    client = _client(api, token)
    progress = _Progress(os.path.getsize(file), quiet)
    # What the interrupt handler needs: the clip once created, and whether complete was sent.
    state: dict[str, Any] = {"clip_id": resume_clip_id, "multipart": bool(resume_clip_id), "completing": False}

    def announce(created: dict[str, Any]) -> None:
        state["clip_id"], state["multipart"] = created["clip"]["id"], bool(created.get("multipart"))
        progress.start()
        if created.get("multipart"):
            session = created["multipart"]
            _say(
                f"clip {created['clip']['id']}: {session['part_count']} parts of {session['part_size']} bytes; "
                f"if interrupted, resume with: --resume {created['clip']['id']}"
            )

    def resumed(stored: dict[str, Any]) -> None:
        progress.start()
        _say(f"resuming: {len(stored['parts'])} of {stored['multipart']['part_count']} parts already stored")

    def completing(clip_id: str) -> None:
        state["completing"] = True

    try:
        try:
            if resume_clip_id:
                result = client.resume_file(
                    resume_clip_id,
                    file,
                    parallel=parallel,
                    on_progress=progress.update,
                    on_resume=resumed,
                    before_complete=completing,
                )
            else:
                result = client.upload_file(
                    file,
                    note_id=note_id,
                    mime_type=mime_type,
                    on_progress=progress.update,
                    multipart_threshold=multipart_threshold,
                    parallel=parallel,
                    on_created=announce,
                    before_complete=completing,
                )
        finally:
            progress.close()
    except KeyboardInterrupt:
        _interrupted(api, token, file, state)
    click.echo(json.dumps(result["clip"], indent=2))
    _print_playback(result["playback"])


def _interrupted(api: str | None, token: str | None, file: str, state: dict[str, Any]) -> None:
    """Say what Ctrl-C left behind and how to go on; exit 130 (or 0 when the clip is ready).

    Ctrl-C during complete may come after the server made the clip ready: its state is
    asked for again (a new connection; the interrupted one is not reused).
    """
    clip_id = state["clip_id"]
    resume = f"{os.path.basename(sys.argv[0]) or 'advanced-notes'} upload {shlex.quote(file)} --resume {clip_id}"
    if clip_id is None:
        _say("interrupted before the upload session was created: nothing was uploaded")
        raise SystemExit(INTERRUPTED)
    if state["completing"]:
        client = _client(api, token, timeout=OUTCOME_TIMEOUT_SECONDS)
        clip = client.get(clip_id)["clip"]
        if clip["status"] == "ready":
            _say(f"interrupted during complete: clip {clip_id} is ready")
            click.echo(json.dumps(clip, indent=2))
            _print_playback(client.playback(clip_id))
            raise SystemExit(0)
        if clip["status"] != "pending":
            _say(f"interrupted during complete: clip {clip_id} is {clip['status']} (GET /api/audio-clips/{clip_id})")
            raise SystemExit(INTERRUPTED)
        _say(f"interrupted during complete: clip {clip_id} is still pending; finish it with:\n  {resume}")
        raise SystemExit(INTERRUPTED)
    if state["multipart"]:
        _say(f"interrupted: the parts stored so far are kept; send the others with:\n  {resume}")
    else:
        _say(f"interrupted: clip {clip_id} stays pending; finish it with:\n  {resume}")
    raise SystemExit(INTERRUPTED)


@click.command("play")
@click.argument("clip_id")
@_client_options
@_api_errors
def play_command(clip_id: str, api: str | None, token: str | None) -> None:
    """Print a playback URL for CLIP_ID (a ready clip)."""
    _print_playback(_client(api, token).playback(clip_id))


@click.command("note-audio")
@click.argument("note_id")
@_client_options
@_api_errors
def note_audio_command(note_id: str, api: str | None, token: str | None) -> None:
    """Print NOTE_ID's primary clip (most recent ready) and a playback URL."""
    result = _client(api, token).note_audio(note_id)
    click.echo(json.dumps(result["clip"], indent=2))
    _print_playback(result["playback"])


#: The commands of this module, for the ``advanced-notes`` group.
COMMANDS = (upload_command, play_command, note_audio_command)
