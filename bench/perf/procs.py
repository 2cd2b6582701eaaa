"""Start, watch and stop the processes of a benchmark run (moto, gunicorn, load generator).

Every child starts in its own session (its own process group). Two reasons:
a Ctrl-C in the terminal reaches only the harness, which then stops its children in
order; and stopping a child also stops what it forked (gunicorn's workers) by the
group id of a process this harness started, never by a process name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Seconds a child gets to exit after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 8.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Child:
    """A started process: ``name`` for messages, ``log`` where its stdout/stderr go."""

    name: str
    proc: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the child's log (for error messages)."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Children:
    """The processes this run started; :meth:`stop_all` ends every one still running.

    Args:
        log_dir: folder for one ``<name>.log`` per child.
    """

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self._children: list[Child] = []

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | Path | None = None
    ) -> Child:
        """Start ``argv`` in a new session, output to ``<log_dir>/<name>.log``."""
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                list(argv),
                env=dict(env) if env is not None else None,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(name, proc, log)
        self._children.append(child)
        return child

    def stop(self, child: Child) -> None:
        """SIGTERM the child's process group, then SIGKILL it after :data:`STOP_GRACE_SECONDS`."""
        if child.proc.poll() is None:
            _signal_group(child.pid, signal.SIGTERM)
            try:
                child.proc.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                _signal_group(child.pid, signal.SIGKILL)
                child.proc.wait(5)
        # Forked grandchildren (gunicorn workers) may outlive a master killed with SIGKILL.
        _signal_group(child.pid, signal.SIGKILL)
        if child in self._children:
            self._children.remove(child)

    def stop_all(self) -> None:
        """Stop every child still known, newest first (clients before the servers they use)."""
        for child in reversed(list(self._children)):
            try:
                self.stop(child)
            except Exception as exc:
                print(f"warning: could not stop {child.name} (pid {child.pid}): {exc}", file=sys.stderr)


def _signal_group(pgid: int, sig: int) -> None:
    # The child was started with start_new_session=True, so its pid is its group id.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_for_http(url: str, child: Child, timeout_s: float = 30.0) -> None:
    """Poll ``url`` until it answers any HTTP status; raise if ``child`` dies or time runs out.

    Args:
        url: a loopback URL served by ``child``.
        timeout_s: seconds to wait at most.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise RuntimeError(f"{child.name} exited with {child.proc.returncode}:\n{child.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means the server is up
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{child.name} did not answer {url} within {timeout_s:.0f} s:\n{child.log_tail()}")


def run_checked(
    argv: Sequence[str],
    env: Mapping[str, str] | None,
    timeout_s: float,
    what: str,
    children: Children | None = None,
    log_name: str | None = None,
) -> None:
    """Run a helper process to completion within ``timeout_s`` seconds; raise on failure.

    When ``children`` is given the process is tracked like the servers, so a Ctrl-C
    while it runs stops it too.
    """
    if children is None:
        result = subprocess.run(
            list(argv),
            check=False,
            env=dict(env) if env is not None else None,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{what} failed ({result.returncode}):\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
        return
    child = children.start(log_name or what.replace(" ", "-"), argv, env)
    try:
        code = child.proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        children.stop(child)
        raise RuntimeError(f"{what} did not finish within {timeout_s:.0f} s:\n{child.log_tail()}") from None
    children.stop(child)
    if code != 0:
        raise RuntimeError(f"{what} failed ({code}):\n{child.log_tail(60)}")
