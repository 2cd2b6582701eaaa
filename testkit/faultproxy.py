"""A TCP proxy on loopback that injects faults between the app and a real dependency.

Used in front of moto's S3 server and of PostgreSQL. Modes:

- ``pass``: relay bytes both ways (the dependency works);
- ``refuse``: nothing listens on the port (connection refused);
- ``reset``: accept, then reset the connection at once;
- ``hang``: accept and never answer (a dead host behind a live load balancer);
- ``http500``: answer every HTTP request with ``500 Internal Server Error``.

Switching mode drops every open connection, as a real outage would.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading

MODES = ("pass", "refuse", "reset", "hang", "http500")


class FaultProxy:
    """Proxy ``127.0.0.1:<port>`` to ``target``; ``mode`` chooses the fault (see module doc)."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.mode = "pass"
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self.port = 0
        self._listen()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()

    def set_mode(self, mode: str) -> None:
        """Switch fault mode; open connections are dropped."""
        assert mode in MODES, mode
        with self._lock:
            self.mode = mode
            for conn in list(self._conns):
                self._close(conn)
            if mode == "refuse" and self._listener is not None:
                try:  # shutdown wakes the thread blocked in accept(); close alone does not
                    self._listener.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._listener.close()
                self._listener = None
            elif mode != "refuse" and self._listener is None:
                self._listen()

    def close(self) -> None:
        self._stop.set()
        self.set_mode("refuse")

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)

    def _close(self, conn: socket.socket) -> None:
        self._conns.discard(conn)
        with contextlib.suppress(OSError):
            conn.close()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return  # listener closed
            self._track(client)
            threading.Thread(target=self._serve, args=(client, self.mode), daemon=True).start()

    def _serve(self, client: socket.socket, mode: str) -> None:
        if mode == "reset":
            try:  # linger 0: close() sends RST instead of FIN
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass  # already closed by a mode switch
            self._close(client)
        elif mode == "hang":
            while client in self._conns and not self._stop.wait(0.1):
                pass  # hold the connection, answer nothing, until the mode changes
        elif mode == "http500":
            self._answer_500(client)
        else:
            self._relay(client)

    def _answer_500(self, client: socket.socket) -> None:
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = client.recv(65536)
                if not chunk:
                    return
                data += chunk
            client.sendall(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
                b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
        except OSError:
            pass
        finally:
            self._close(client)

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            self._close(client)
            return
        self._track(upstream)
        try:
            while True:
                readable, _, _ = select.select([client, upstream], [], [], 1.0)
                if self._stop.is_set():
                    return
                for src in readable:
                    data = src.recv(65536)
                    if not data:
                        return
                    (upstream if src is client else client).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            self._close(client)
            self._close(upstream)
