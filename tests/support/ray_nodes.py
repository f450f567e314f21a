"""Real Ray nodes for cluster tests: ``ray start --head`` and ``ray start --address`` as
separate processes (each in its own session, its own temp dir), ended by process id."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RayNode:
    """One node, started with ``--block`` so that ending its process ends the node."""

    def __init__(self, args: list[str]) -> None:
        env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
        self.proc = subprocess.Popen([RAY, "start", "--block", "--disable-usage-stats", *args], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def session_pids(self) -> list[int]:
        """Every process of the session this node's ``ray start`` opened (ours only)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    if int(fields[3]) == self.proc.pid:  # field 6 of stat: the session id
                        pids.append(int(entry.name))
        return pids

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """End the node at once: every process of its session (raylet, workers)."""
        for pid in self.session_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        self.proc.wait(timeout=60)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=60)
        for pid in self.session_pids():  # anything of the node's session still alive
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class RayCluster:
    """A head node (with the job server) and optional worker nodes."""

    def __init__(self, head_cpus: int = 1) -> None:
        self.tmp = tempfile.mkdtemp(prefix="r", dir="/tmp")
        self.gcs_port, self.dashboard_port = free_port(), free_port()
        self.nodes: list[RayNode] = []
        self.head = RayNode(["--head", f"--port={self.gcs_port}", f"--dashboard-port={self.dashboard_port}",
                             "--dashboard-host=127.0.0.1", "--include-dashboard=true", f"--num-cpus={head_cpus}",
                             f"--temp-dir={self.tmp}", "--node-ip-address=127.0.0.1"])
        self.nodes.append(self.head)
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{self.dashboard}/api/version", timeout=1)
                return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("the Ray head did not come up within 90 s")

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    def alive_nodes(self) -> int:
        """How many nodes the head's state API reports alive."""
        from ray.util.state import list_nodes

        return len(list_nodes(address=self.dashboard, filters=[("state", "=", "ALIVE")]))

    def add_worker(self, cpus: int, resources: str = "{}") -> RayNode:
        """Start a worker node and wait until it has joined.

        Nodes on one host share the session's socket directory and each picks the first
        free ``plasma_store.N`` name, so two nodes starting at once can pick the same one;
        starting them one after the other, each with its own agent ports, avoids that.
        """
        expected = len(self.nodes) + 1
        ports = {flag: free_port() for flag in ("dashboard-agent-listen-port", "dashboard-agent-grpc-port",
                                                "metrics-export-port", "runtime-env-agent-port")}
        node = RayNode([f"--address={self.address}", f"--num-cpus={cpus}", f"--resources={resources}",
                        "--node-ip-address=127.0.0.1", *(f"--{flag}={port}" for flag, port in ports.items())])
        self.nodes.append(node)
        deadline = time.time() + 90
        while time.time() < deadline:
            if node.proc.poll() is not None:
                raise RuntimeError(f"the Ray worker node exited with code {node.proc.returncode}")
            with contextlib.suppress(Exception):  # the state API answers only once the node registers
                if self.alive_nodes() >= expected:
                    return node
            time.sleep(0.5)
        raise RuntimeError(f"the Ray worker node did not join within 90 s ({self.alive_nodes()} alive)")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
