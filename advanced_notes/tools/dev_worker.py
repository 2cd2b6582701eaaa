"""The dev server's processing worker: one Celery worker process beside ``advanced-notes dev``.

Its broker is kombu's SQLAlchemy transport on a SQLite file of the dev server's
``instance/`` folder; it runs the relay too (``worker -B``) and stops with the server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from advanced_notes.app import environment_with

#: The worker's beat keeps its schedule here (beside the database, one per dev server).
BEAT_SCHEDULE = "celerybeat-schedule"
#: Seconds the worker has to stop after SIGTERM before its process group is killed: a
#: warm shutdown waits for the job in hand, and a long transcode must not hold Ctrl-C
#: (the job is in the outbox and its message is not acknowledged: nothing is lost).
WORKER_STOP_SECONDS = 5.0


def worker_command(instance: Path) -> list[str]:
    """The command line of the dev stack's worker: one prefork child and the relay's beat.

    Args:
        instance: the dev server's ``instance/`` folder (the beat schedule goes there).
    Returns:
        argv for :class:`subprocess.Popen` (this interpreter's ``celery``).
    """
    return [
        sys.executable,
        "-m",
        "celery",
        "--quiet",  # no banner: the dev server's banner says what runs
        "-A",
        "advanced_notes.worker.celery_app",
        "worker",
        "-B",
        "--concurrency",
        "1",
        "--loglevel",
        "warning",
        # One worker, alone on its broker: no peers to sync with at start or to gossip with.
        "--without-mingle",
        "--without-gossip",
        "--schedule-filename",
        str(instance / BEAT_SCHEDULE),
    ]


class DevWorker:
    """The dev stack's Celery worker: a child process in a session of its own.

    Its own session (process group) keeps a terminal's Ctrl-C for the dev server, which
    then stops the worker in order, and lets :meth:`stop` kill the worker's children too
    (the prefork child and the beat process) when the main process does not stop in time.

    Args:
        instance: the ``instance/`` folder (the worker's working directory, so no ``.env``
            of the dev server's folder reaches it); settings: the embedded config, applied
            over the environment (None removes a variable).
    """

    def __init__(self, instance: Path, settings: dict[str, str | None]):
        self.instance = instance
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the worker (it connects to the broker and the database on its own)."""
        env = environment_with(self.settings) | {"PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            worker_command(self.instance), cwd=self.instance, env=env, start_new_session=True
        )

    @property
    def pid(self) -> int | None:
        """The worker's main process id (None before :meth:`start`)."""
        return self.process.pid if self.process else None

    def stop(self, grace: float = WORKER_STOP_SECONDS) -> None:
        """SIGTERM (a warm shutdown), then SIGKILL to the whole group after ``grace`` seconds.

        The group is killed in any case once the main process is gone, so no child of the
        worker outlives the dev server.
        """
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        self.process = None
