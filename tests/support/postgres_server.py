"""A private PostgreSQL server for fault tests: ``initdb`` into a temporary directory,
``pg_ctl start`` on a free loopback port, ``pg_ctl restart`` on demand, and ``pg_ctl stop``
at the end. It is this test's own server: the shared one on 5432 is never touched.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user
(``runuser``), which owns the data directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.ray_nodes import free_port


def server_binaries() -> Path | None:
    """The newest PostgreSQL ``bin`` directory that has ``initdb`` and ``pg_ctl``."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def unavailable_reason() -> str | None:
    """Why a private server cannot be started here, or None."""
    if server_binaries() is None:
        return "no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
        if shutil.which("runuser") is None:
            return "running as root without runuser to drop to the 'postgres' user"
    return None


class PostgresServer:
    """One server on 127.0.0.1:<free port>, trust authentication, database ``postgres``."""

    def __init__(self) -> None:
        bin_dir = server_binaries()
        assert bin_dir is not None, unavailable_reason()
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="atlas-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.user: str | None = "postgres" if os.geteuid() == 0 else None
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w",
                  "-t", "60", *extra, action)

    def start(self) -> None:
        self._pg_ctl("start")

    def restart(self) -> None:
        """Stop (``-m fast``: every client connection is cut) and start again."""
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.root, ignore_errors=True)
