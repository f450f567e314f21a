"""Run the scheduler on a Ray cluster as a Ray job (the Ray Jobs API).

``submit`` validates the campaign locally (a bad file never reaches the cluster), then
uploads it as the job's working directory and starts ``atlas run campaign.yaml
--address auto`` there; the job carries ``{"atlas_campaign": NAME}`` in its metadata, so
``logs`` can find a campaign's latest job. Progress lives in the database, so ``atlas
status`` works wherever the scheduler runs. The project must be installed on the
cluster's nodes (see deploy/Dockerfile).

The rules at the edges:

- ``--address`` is checked before Ray is asked (:func:`job_server_url`): the job server's
  ``http(s)://HOST:PORT``, or the cluster's GCS ``HOST:PORT`` (Ray's reading of an address
  without a scheme), whose dashboard address is then the job server; one nothing listens
  at, or where something other than a GCS answers, is one line within seconds;
- the storage URL is parsed here (:func:`job_storage`), never opened: a bad one is a
  :class:`~archive.errors.StorageError` and nothing is submitted; a relative SQLite path
  is made absolute from the submitter's working directory (the job runs in a temporary
  package folder of Ray's, where a relative file would be lost);
- ``--python PATH`` (:func:`job_python`): for a job server on this machine, an existing
  executable file, a relative path made absolute; for another machine's, where it cannot
  be looked at, a relative path is refused (it would be looked for in the job's temporary
  folder) and an absolute one taken as given; a command name (``python``) is the node's;
- a python target whose module is importable here but from no installed package (a file
  beside the spec) is named by :func:`unshipped_module`: only ``campaign.yaml`` is uploaded;
- a submission the job server refuses "try again later" (its agent still starting) is
  retried with backoff for up to :data:`SUBMIT_PATIENCE_S`; any other failure of the job
  server is a :class:`JobError` (one ``error:`` line);
- the upload's temporary folder is removed once the job is submitted, or has failed to be;
- ``logs(follow=True)`` yields each chunk as the job writes it; ``wait`` waits as long as
  the job runs.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import stat
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from entropy_atlas.errors import AtlasError
from search.spec import CampaignSpec

METADATA_KEY = "atlas_campaign"
STORAGE_KEY = "atlas_storage"
"""The job's metadata key holding its storage (:func:`job_storage_name`): ``logs --storage`` picks by it."""
SUBMIT_PATIENCE_S = 120.0
"""How long a submission the job server refuses "try again later" is retried."""
SUBMIT_BACKOFF_S = 0.5
"""The first wait between those tries; it doubles, up to 8 s."""
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
CONNECT_S = 5.0
"""How long the check of ``--address`` (:func:`job_server_url`) waits for a TCP connection;
a port nothing listens on is refused at once."""
JOB_ADDRESS_FORMS = ("submit and logs take the Ray job server http://HEAD:8265 (the dashboard) or the "
                     "cluster's GCS address HEAD:6379")


class JobError(AtlasError, RuntimeError):
    """The Ray job server refused a request or could not be reached while serving one."""


class JobServerUnreachable(JobError, ConnectionError):
    """No Ray job server answers at the address."""


class BadInterpreter(AtlasError, ValueError):
    """``--python`` names no interpreter the job can start."""


def job_python(python: str, local: bool, cwd: Path | None = None) -> str:
    """``python`` as the job's entrypoint must name it, checked before anything is submitted.

    Empty, or holding a NUL: refused. A name without ``/`` is a command the job's node
    finds on its own ``PATH`` (the Ray node's, not this shell's): taken as given. A path,
    on a job server of this machine (``local``, where the job runs), must be an existing
    executable file, and a relative one is made absolute from ``cwd`` (the job runs in a
    temporary folder of Ray's, where it would not be found). On another machine the file
    cannot be looked at from here: a relative path is refused for that same reason, and an
    absolute one taken as given."""
    name = repr(python)
    if not python.strip() or "\0" in python:
        raise BadInterpreter(f"--python {name}: name the Python on the cluster that has entropy-atlas installed")
    if "/" not in python:  # a command, found on the PATH of the job's node (not this shell's)
        return python
    path = Path(python)
    if not local:
        if not path.is_absolute():
            raise BadInterpreter(f"--python {name}: a relative path would be looked for in the job's temporary "
                                 "folder on the cluster; give the interpreter's absolute path on the nodes")
        return python
    try:
        path = (cwd or Path.cwd()) / path.expanduser()
    except RuntimeError:  # ~user of no such user: the path as written
        path = (cwd or Path.cwd()) / path
    where = "" if str(path) == python else f" ({path})"
    try:
        found = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise BadInterpreter(f"--python {name}: no such file{where}") from None
    except OSError as exc:
        raise BadInterpreter(f"--python {name}: cannot be read{where}: {exc.strerror}") from None
    if not stat.S_ISREG(found.st_mode) or not os.access(path, os.X_OK):
        raise BadInterpreter(f"--python {name}: not an executable file{where}")
    return str(path)


def _client(address: str) -> Any:
    """A Ray job submission client for ``address``, checked first (:func:`job_server_url`)."""
    url = job_server_url(address)
    from ray.job_submission import JobSubmissionClient

    named = address if url == address else f"{url} (named by the GCS at {address})"
    try:
        return JobSubmissionClient(url)
    except Exception as exc:
        raise JobServerUnreachable(f"cannot reach the Ray job server at {named}: {exc}") from None


def job_server_url(address: str) -> str:
    """The job server's URL for ``--address``, checked within seconds before Ray is asked
    (for a GCS nothing answers at, Ray waits 40 s and prints its own C++ log lines):

    - ``http(s)://HOST[:PORT]``: something must accept a TCP connection there
      (:data:`CONNECT_S`); the address is the URL;
    - ``HOST:PORT``, no scheme, is the cluster's GCS (as Ray's ``JobSubmissionClient``
      reads it): something must accept a connection there and answer as a GCS
      (:func:`~workers.executors.ray_executor._probe_gcs`), and the job server is the
      dashboard address the GCS holds, which must accept a connection too;
    - ``ray://HOST[:PORT]``, a Ray Client server: checked as ``atlas run --address`` checks it
      (:func:`~workers.executors.ray_executor.check_reachable`: something must accept a
      connection there and answer as a gRPC server that is not the GCS), then left to Ray;
    - anything else (``auto``) is left to Ray.

    Each refusal is one line (:class:`JobServerUnreachable`) naming ``address`` and the forms."""
    if address.lower().startswith(("http://", "https://")):
        _connect(address, *_url_host_port(address))
        return address
    if address.startswith("ray://"):
        from workers.executors.base import ExecutorError
        from workers.executors.ray_executor import ADDRESS_FORMS, check_reachable

        try:
            check_reachable(address)  # else Ray Client retries for 40 s and prints its own lines
        except ExecutorError as exc:
            raise JobServerUnreachable(f"{str(exc).removesuffix(f'; {ADDRESS_FORMS}')}; {JOB_ADDRESS_FORMS}") from None
        return address
    if "://" in address or address in ("auto", "local"):
        return address
    host, port = _gcs_host_port(address)
    _connect(address, host, port, what="the Ray cluster's GCS")
    from workers.executors.ray_executor import _probe_gcs

    problem = _probe_gcs(address, client=False)
    if problem is not None and "HTTP server" in problem:
        raise JobServerUnreachable(f"{address} answers HTTP, not as a Ray GCS: for the job server (the dashboard) "
                                   f"write http://{address}; {JOB_ADDRESS_FORMS}")
    if problem is not None:
        raise JobServerUnreachable(f"{address} is not a Ray cluster's GCS: {problem}; {JOB_ADDRESS_FORMS}")
    dashboard = _dashboard_address(address)
    if dashboard is None:
        raise JobServerUnreachable(f"the Ray cluster at {address} names no job server (is its dashboard running?); "
                                   f"{JOB_ADDRESS_FORMS}")
    url = f"http://{dashboard}"
    _connect(f"{url} (named by the GCS at {address})", *_url_host_port(url))
    return url


def _url_host_port(url: str) -> tuple[str, int]:
    """``HOST`` and ``PORT`` of an http(s) URL (80 or 443 where it names none); a URL
    without a host or with a bad port is a :class:`JobServerUnreachable`."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        port = 0
    if not parts.hostname or not port:
        raise JobServerUnreachable(f"{url!r} is not a job server's URL (http://HOST:PORT); {JOB_ADDRESS_FORMS}")
    return parts.hostname, port


def _gcs_host_port(address: str) -> tuple[str, int]:
    """``HOST`` and ``PORT`` of a GCS address ``HOST:PORT``; without a port (Ray takes none
    there) or with a bad one, a :class:`JobServerUnreachable` naming the forms."""
    host, colon, port = address.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in host:
        raise JobServerUnreachable(f"{address!r} is neither a job server's URL nor a GCS address; {JOB_ADDRESS_FORMS}")
    return host.strip("[]"), int(port)


def _connect(address: str, host: str, port: int, what: str = "the Ray job server") -> None:
    """Open and close a TCP connection to ``host:port`` within :data:`CONNECT_S`; nothing
    listening (refused at once) or nothing answering is a :class:`JobServerUnreachable`
    naming ``address`` and the forms."""
    import socket

    try:
        socket.create_connection((host, port), timeout=CONNECT_S).close()
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
        raise JobServerUnreachable(f"cannot reach {what} at {address}: {why}; {JOB_ADDRESS_FORMS}") from None


def _dashboard_address(gcs: str) -> str | None:
    """The dashboard's ``HOST:PORT`` that the GCS at ``gcs`` holds (where Ray's own client
    looks it up), asked once with a deadline; None where it holds none or gives no answer."""
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    from workers.executors.ray_executor import PROBE_S, _grpc_channel

    channel = _grpc_channel(gcs)
    try:
        stub = gcs_service_pb2_grpc.InternalKVGcsServiceStub(channel)
        reply = stub.InternalKVGet(gcs_service_pb2.InternalKVGetRequest(key=b"dashboard", namespace=b"dashboard"),
                                   timeout=PROBE_S)
    except grpc.RpcError:
        return None
    finally:
        channel.close()
    return reply.value.decode() if reply.status.code == 0 and reply.value else None


def job_storage(url: str, cwd: Path | None = None) -> tuple[str, Path | None]:
    """``url`` as the job must get it, and its SQLite file (None for PostgreSQL or memory).

    The URL is parsed, not opened (a :class:`~archive.errors.StorageError` for a bad one);
    a relative SQLite path is made absolute from ``cwd`` (the working directory)."""
    from archive.engine import parse_storage_url, sqlite_file

    parsed = parse_storage_url(url)
    path = sqlite_file(parsed)
    if path is None:
        return url, None
    if path.is_absolute() and path == Path(parsed.database or ""):
        return url, path
    absolute = (cwd or Path.cwd()) / path
    return parsed.set(database=str(absolute)).render_as_string(hide_password=False), absolute


def unshipped_module(spec: CampaignSpec, search_dirs: list[Path]) -> str | None:
    """The top-level module of the spec's python target when it is importable here (from
    ``sys.path`` or ``search_dirs``) but from no installed package, so the cluster, which
    gets only ``campaign.yaml``, may not import it; otherwise None."""
    target = spec.evaluator.target
    if spec.evaluator.kind != "python" or not target:
        return None
    top = target.partition(":")[0].split(".")[0]
    if top in sys.builtin_module_names or top in sys.stdlib_module_names or _distributed(top):
        return None
    from importlib.machinery import PathFinder

    found = PathFinder.find_spec(top, [p or str(Path.cwd()) for p in sys.path] + [str(d) for d in search_dirs])
    where = None if found is None else found.origin or next(iter(found.submodule_search_locations or []), None)
    return None if where is None or _installed_path(Path(where)) else top


def _distributed(top: str) -> bool:
    """Whether an installed distribution (editable ones too) provides module ``top``."""
    from importlib.metadata import packages_distributions

    return top in packages_distributions()


def _installed_path(path: Path) -> bool:
    """Whether ``path`` lies in the interpreter's library or site-packages folders."""
    roots = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    return any(path.resolve().is_relative_to(Path(root).resolve()) for root in roots)


def submit(spec: CampaignSpec, address: str, storage: str, env_vars: dict[str, str] | None = None,
           python: str = "python", on_retry: Callable[[str], None] | None = None) -> str:
    """Submit the campaign's scheduler as a Ray job; returns the job id. ``storage`` goes
    into the entrypoint as given (see :func:`job_storage`); the uploaded folder is removed
    when this returns or raises."""
    client = _client(address)
    entrypoint = " ".join(shlex.quote(a) for a in [
        python, "-m", "search.cli", "run", "campaign.yaml", "--storage", storage, "--address", "auto",
        "--map", f"{spec.name}.png",  # in the job's own working folder, which exists (an --map folder must)
    ])
    job_id = f"atlas-{spec.name}-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="atlas-submit-") as workdir:
        (Path(workdir) / "campaign.yaml").write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
        request = {
            "entrypoint": entrypoint, "submission_id": job_id,
            "metadata": {METADATA_KEY: spec.name, STORAGE_KEY: job_storage_name(storage)},
            "runtime_env": {"working_dir": workdir, "env_vars": {"RAY_AUTH_MODE": "disabled", **(env_vars or {})}},
        }
        return _submit_patiently(client, address, request, on_retry)


def _submit_patiently(client: Any, address: str, request: dict[str, Any],
                      on_retry: Callable[[str], None] | None) -> str:
    """``client.submit_job(**request)``, tried again with backoff while the server says to
    try again later, for up to :data:`SUBMIT_PATIENCE_S`; any other failure a :class:`JobError`."""
    deadline = time.monotonic() + SUBMIT_PATIENCE_S
    delay = SUBMIT_BACKOFF_S
    while True:
        try:
            return str(client.submit_job(**request))
        except Exception as exc:
            if not _try_again_later(exc) or time.monotonic() + delay > deadline:
                raise JobError(f"the Ray job server at {address} did not take the job: {exc}") from None
            if on_retry is not None:
                on_retry(f"the Ray job server at {address} is not ready ({exc}); trying again for up to "
                         f"{SUBMIT_PATIENCE_S:g} s")
                on_retry = None
        time.sleep(delay)
        delay = min(delay * 2, 8.0)


def _try_again_later(exc: Exception) -> bool:
    """Whether the job server's refusal is a transient one (its agent still starting)."""
    text = str(exc).lower()
    return "try again later" in text or "no available agent" in text


def _ask(address: str, what: str, call: Callable[[], Any]) -> Any:
    """``call()``, a failure of the job server a :class:`JobError` saying ``what`` failed."""
    try:
        return call()
    except AtlasError:
        raise
    except Exception as exc:
        raise JobError(f"{what} from the Ray job server at {address} failed: {exc}") from None


def job_storage_name(url: str) -> str:
    """How a job's metadata names its storage: the URL the job gets (:func:`job_storage`: a
    SQLite path absolute), its password hidden (the job server shows metadata to anyone who
    can reach it)."""
    from archive.engine import parse_storage_url

    return parse_storage_url(job_storage(url)[0]).render_as_string(hide_password=True)


def password_warning(url: str) -> str | None:
    """What to say of a storage URL that holds a password (None where it holds none): a job's
    entrypoint carries the URL, and the job server shows it to anyone who can reach it."""
    from archive.engine import parse_storage_url

    if not parse_storage_url(url).password:
        return None
    return ("the storage URL's password is shown to anyone who can read the Ray job server (the job's "
            "entrypoint); leave it out of the URL and give it to the cluster's nodes as PGPASSWORD in their "
            "environment (a Kubernetes Secret, the launcher's config) or in ~/.pgpass")


def latest_job(address: str, name: str, storage: str | None = None) -> Any:
    """The campaign's latest job at ``address``; with ``storage``, the latest that writes that
    storage (:func:`job_storage_name`), or that names none (submitted before jobs named it)."""
    client = _client(address)
    listed = _ask(address, "listing the jobs", client.list_jobs)
    wanted = None if storage is None else job_storage_name(storage)
    jobs = [j for j in listed if (j.metadata or {}).get(METADATA_KEY) == name
            and (wanted is None or (j.metadata or {}).get(STORAGE_KEY, wanted) == wanted)]
    if not jobs:
        raise LookupError(f"no Ray job for campaign {name!r} at {address}"
                          + ("" if wanted is None else f" that writes {wanted}"))
    return max(jobs, key=lambda j: j.start_time or 0)


def job_log(address: str, job_id: str) -> str:
    """All of job ``job_id``'s log so far."""
    client = _client(address)
    return str(_ask(address, f"the log of job {job_id}", lambda: client.get_job_logs(job_id)))


def logs(address: str, name: str, follow: bool = False, storage: str | None = None) -> Iterator[str]:
    """The log of the campaign's latest job (with ``storage``, of those writing it:
    :func:`latest_job`): all of it, or followed until the job ends, each chunk yielded as
    soon as the job server sends it."""
    job = latest_job(address, name, storage)
    if not follow:
        yield job_log(address, job.submission_id)
        return
    client = _client(address)
    try:
        yield from _each(client.tail_job_logs(job.submission_id))
    except AtlasError:
        raise
    except Exception as exc:
        raise JobError(f"following the log of job {job.submission_id} at {address} failed: {exc}") from None


def _each(chunks: AsyncIterator[str]) -> Iterator[str]:
    """The async iterator ``chunks`` as a plain one: an event loop of its own runs until
    each next chunk has come, which is yielded at once. Closed early (Ctrl-C, the consumer
    stops), its pending task is cancelled and the loop closed."""
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                chunk = loop.run_until_complete(anext(chunks))
            except StopAsyncIteration:
                return
            yield chunk
    finally:
        _close(loop)


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what still runs on ``loop`` (a tail cut short), finish its async generators, close it."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    try:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    except Exception:  # pragma: no cover - the tail's own clean-up failed; nothing more to do
        pass
    finally:
        loop.close()


def wait(address: str, job_id: str, poll_s: float = 1.0,
         on_status: Callable[[str], None] | None = None) -> str:
    """Block until the job ends, however long it runs; its final status. ``on_status`` is
    told each status the job passes through (PENDING, RUNNING) as it changes; a failure of
    the job server meanwhile is a :class:`JobError`."""
    client = _client(address)
    seen = None
    while True:
        status = _ask(address, f"the status of job {job_id}", lambda: client.get_job_status(job_id))
        value = str(getattr(status, "value", status))
        if value in TERMINAL:
            return value
        if value != seen and on_status is not None:
            on_status(value)
        seen = value
        time.sleep(poll_s)
