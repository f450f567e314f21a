"""A PostgreSQL server that accepts the TCP connection but never answers: the opening fails
with one line after one connect timeout (5 s), not two. The quick revision check of a
read-only opening had swallowed the timeout and left the full check to connect again (10.6 s
for ``atlas status``, two connections seen by the server)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from archive.errors import NoArchive, StorageError
from archive.store import Store
from tests.support.loopback import LoopbackServer

#: one connect timeout (make_engine's 5 s) and room for a loaded machine; two are 10 s and more
BOUND_S = 9.0


class SilentServer(LoopbackServer):
    """A listener on 127.0.0.1 that accepts every connection, holds it, and sends nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted: list[socket.socket] = []

    def handle(self, conn: socket.socket) -> None:
        self.accepted.append(conn)

    def close(self) -> None:
        super().close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer().start()
    try:
        yield server
    finally:
        server.close()


def _url(server: SilentServer) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/test"


def test_readonly_open_of_a_silent_server_pays_one_connect_timeout(silent: SilentServer) -> None:
    url = _url(silent)
    started = time.monotonic()
    with pytest.raises(StorageError) as raised:
        Store(url, readonly=True)
    took = time.monotonic() - started
    print(f"Store(readonly=True) of a silent server failed in {took:.1f} s after {len(silent.accepted)} connection(s)")
    message = str(raised.value)
    assert message == f"cannot open storage {url}: connection timeout expired", message
    assert type(raised.value) is StorageError  # not NoArchive: nothing was read
    assert took < BOUND_S
    assert len(silent.accepted) == 1


def test_status_of_a_silent_server_is_one_line_after_one_timeout(silent: SilentServer) -> None:
    from typer.testing import CliRunner

    from search.cli import app

    url = _url(silent)
    started = time.monotonic()
    done = CliRunner().invoke(app, ["status", "--storage", url])
    took = time.monotonic() - started
    print(f"atlas status of a silent server failed in {took:.1f} s after {len(silent.accepted)} connection(s)")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.exit_code == 2 and done.stdout == "", done.output
    assert lines == [f"error: cannot open storage {url}: connection timeout expired"], done.output
    assert took < BOUND_S
    assert len(silent.accepted) == 1


def test_a_database_without_an_archive_is_still_no_archive(postgres_url: str) -> None:
    """The quick check's failed read (no ``alembic_version`` table) still hands over to the
    full check, which names the database as holding no archive."""
    with pytest.raises(NoArchive, match="holds no Entropy Atlas archive"):
        Store(postgres_url, readonly=True)
