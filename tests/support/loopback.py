"""A TCP listener on loopback for tests that play a server: it accepts until stopped and hands
each connection to :meth:`LoopbackServer.handle`."""

from __future__ import annotations

import socket
import threading
from typing import Self


class LoopbackServer:
    """Listens on 127.0.0.1 (a free port, ``port``) on its own thread once started; stopped
    by :meth:`close` (or the end of its ``with``), the accept loop waking every 0.1 s to see it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> Self:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.handle(conn)

    def handle(self, conn: socket.socket) -> None:
        """What the server does with a connection it accepted (on the accept loop's thread)."""
        raise NotImplementedError
