"""The Ray executor: a pool of actors, each holding one set-up evaluator and a queue.

- Each actor reserves ``num_cpus``/``num_gpus``, builds the evaluator and calls ``setup``
  once, so a model loads once per worker and never in the driver, which only reads the
  evaluator's class (its ``max_batch_size``). The pool has min(max_in_flight, what the
  cluster can hold) actors. Work is pushed into an actor's own queue (:mod:`workers.executors.ray_actor`),
  up to ``PIPELINE`` batches an actor, breadth-first (every actor gets one before any
  gets a second); the actor starts the next the moment the last ends, so it never waits
  on the driver. One long-polling ``results`` call per busy actor brings outcomes back
  (and carries the batches pushed as it is made), and the driver waits on all of them
  with one ``ray.wait``.
- A batch is known started when it is pushed to an idle actor, or when the batch before
  it comes back; one that runs past ``timeout_s`` × its length is failed as a timeout,
  its actor killed and replaced, and the batches queued behind it go back to the queue.
- An actor that dies (a crash, out of memory, a lost node) reports its running batch
  ``lost`` (the scheduler retries it up to ``max_retries``); the batches queued behind
  it, never started, go back to the queue. A replacement actor is started.
- :meth:`RayExecutor.shutdown` has every actor whose setup has ended call its evaluator's
  ``teardown``, a busy one once its evaluation is cut short (the run has written it off:
  :meth:`EvaluatorActor.close`), waits up to ``TEARDOWN_S`` for them (a failure is a
  one-line warning), then kills all, torn down or not. It holds SIGINT and SIGTERM until
  Ray is shut down (:func:`entropy_atlas.interrupts.held_interrupts`; a second acts at
  once), and the driver's core worker runs without Ray's failure signal handler
  (:func:`_signals_left_to_python`), whose removal in ``ray.shutdown`` had let a SIGTERM
  kill the process (exit −15) as the run ended.
- Actors also reserve the campaign's custom resources, and with ``memory_mb`` Ray's
  ``memory`` resource; their allocations past it fail as ``MemoryError`` (see
  :func:`workers.limits.cap_memory_growth`). An actor that reports itself spent (it holds
  most of that memory after a batch: :mod:`workers.executors.ray_actor`) is replaced, and
  the batch queued behind it, which it did not start, goes back to the queue.
- Refs are matched by their id (:func:`_same_ref`), never by identity: under Ray Client
  (``ray://``) ``ray.wait`` hands back new ``ClientObjectRef`` objects for the same refs.
- The pool has as many actors as the alive nodes can hold (each node's own resources,
  summed over nodes, never the cluster's totals: an actor is placed on one node), and a
  start where no single node can hold one actor is refused (:func:`_node_fits`).
- ``--address`` is checked before ``ray.init`` (:func:`check_reachable`): an http(s)://
  address, one without a port, one nothing answers at, and one where something other
  than a Ray GCS (``HOST:PORT``) or a Ray Client server (``ray://HOST:PORT``) answers are
  refused within seconds, in one line; whatever ``ray.init`` raises at an address is one
  line too (:class:`ExecutorError`).
- A run at ``--address`` asks the cluster's GCS whether it is there (:func:`_probe_gcs`)
  every ``HEARTBEAT_S``, and at once when a worker's call fails. While it is silent the
  driver waits and touches nothing: a failed call is read again once the GCS answers (then
  a worker that did die is lost as ever), so a GCS back within the grace
  (``ATLAS_RAY_GRACE_S``, 30 s: restarted, Ray reconnected) costs the run nothing. Silent
  for the grace, the run stops with one line (:class:`ClusterLost`): the scheduler's stop
  releases the lease, the campaign is ``stopped`` at once, and ``atlas resume`` runs its
  unfinished evaluations. Ray's own limit (it ends a process whose GCS is silent for 60 s,
  exit 1, with a line of its own) is raised in this process past the grace
  (:func:`_reconnect_window`), so the run stops itself first.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import ray
from ray.exceptions import RayError

from entropy_atlas import settings
from entropy_atlas.interrupts import held_interrupts
from workers import registry
from workers.executors import reaper
from workers.executors.base import SETUP_CHECK_S, Executor, ExecutorConfig, ExecutorError
from workers.executors.ray_actor import EvaluatorActor
from workers.executors.ray_logs import route_worker_deaths
from workers.runner import EvaluationTask, Outcome, setup_failure

log = logging.getLogger("entropy_atlas.executor")

CONNECT_TIMEOUT_S = 10.0  # how long the check of a cluster's address waits for it to answer
PROBE_S = 5.0  # how long the check waits for a gRPC answer (the GCS's cluster id) once connected
ADDRESS_FORMS = ("atlas run --address takes a Ray cluster's GCS address HOST:6379, its Ray Client server "
                 "ray://HOST:10001, or auto; http://HOST:8265 (the dashboard) is for atlas submit and atlas logs")
PIPELINE = 2  # batches an actor holds: the one it runs and the next
LONG_POLL_S = 5.0  # how long an actor's `results` call waits for an outcome before answering empty
SETUP_DEATHS = 3  # workers dead in their evaluator's setup, one after another, before the run is told it failed
MIN_SETUP_LIMIT_S = 300.0  # an actor's setup may take max(this, timeout_s) before it counts as failed
TEARDOWN_S = 5.0  # how long shutdown waits for the workers' teardowns before it kills them
HEARTBEAT_S = 10.0  # how often a run at --address asks its GCS whether it is there, while nothing failed
PROBE_EVERY_S = 2.0  # how often it asks again while the GCS is silent (each ask waits up to PROBE_S)
RAY_RECONNECT_S = 120  # Ray's own limit on a silent GCS in this process (Ray's default: 60 s), past the grace
RECONNECT_ENV = "RAY_gcs_rpc_server_reconnect_timeout_s"


class WorkerSetupLost(RuntimeError):
    """Workers died, or hung, while they set the evaluator up: no evaluation can start."""


class ClusterLost(ExecutorError):
    """The GCS of the Ray cluster at ``--address`` did not answer for the grace
    (``ATLAS_RAY_GRACE_S``): the run stops (its lease released, its unfinished evaluations
    left for a resume, which the scheduler names in its caller's words)."""

    resumes_when_back = True


@dataclasses.dataclass
class _Batch:
    tasks: list[EvaluationTask]
    started: float | None = None  # driver time it was known started
    solo: bool = False  # a retried evaluation run alone: nothing is queued behind it


@dataclasses.dataclass
class _Slot:
    """One actor as the driver sees it: its batches in order, and its calls under way."""

    actor: Any
    ready: Any  # its pending `ready` call (it answers once the evaluator is set up), None after
    held: collections.deque[_Batch] = dataclasses.field(default_factory=collections.deque)
    results: Any = None  # its pending `results` call
    pushed: int = 0  # batches pushed to it so far (the actor runs them in this order)
    worker: str | None = None  # its worker's name (host:pid), once it answered ready
    born: float = dataclasses.field(default_factory=time.monotonic)

    @property
    def solo(self) -> bool:
        """Whether it holds a retried evaluation run alone (then it takes nothing more)."""
        return any(b.solo for b in self.held)


@dataclasses.dataclass
class _ClusterWatch:
    """Whether the GCS at ``target`` answers, asked (:func:`_probe_gcs`) no more often than
    a caller's ``within`` allows; ``silent_since`` is when it first did not, None while it
    answers."""

    target: str
    silent_since: float | None = None
    problem: str = ""  # what the last unanswered ask found
    asked: float = dataclasses.field(default_factory=time.monotonic)

    def silent(self, within: float) -> bool:
        """Whether the GCS is silent, asking it again unless its last ask is under ``within`` s old."""
        if time.monotonic() - self.asked >= within:
            now = time.monotonic()
            problem = _probe_gcs(self.target, client=False)
            self.asked = time.monotonic()
            if problem is None:
                self.silent_since = None
            else:
                self.problem = problem
                if self.silent_since is None:
                    self.silent_since = now
        return self.silent_since is not None

    def silent_for(self) -> float:
        """Seconds since the GCS first did not answer (0 while it answers)."""
        return 0.0 if self.silent_since is None else time.monotonic() - self.silent_since


class RayExecutor(Executor):
    reports_starts_late = True  # an actor starts a queued batch before the driver learns of it

    def __init__(self, config: ExecutorConfig, address: str | None = None) -> None:
        super().__init__(config)
        self.address = address
        self._started_ray = False
        self._slots: list[_Slot] = []
        self._queue: collections.deque[EvaluationTask] = collections.deque()
        self._solo: collections.deque[EvaluationTask] = collections.deque()  # retries: one at a time, alone
        self._setup_deaths = 0  # workers dead in setup since one last finished it
        self._setup_lost: str | None = None  # why no worker can be set up (then every task fails so)
        self._chunk = 1
        self._remote: Any = None
        self._started: list[int] = []  # evaluation ids known started since the last report
        self._watch: _ClusterWatch | None = None  # the GCS at --address, asked while the run goes (_cluster_silent)
        self.grace_s = settings.ray_grace_s()  # how long that GCS may be silent (ATLAS_RAY_GRACE_S)

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        """Start (or join) Ray and the pool of actors. Without an ``address`` a private local
        Ray is started in this process (:meth:`_init_ray`). Whatever fails after that (a
        cluster without the resources asked for, a Ctrl-C) shuts it down again, with the
        actors made so far (:meth:`shutdown`): a refused start leaves no Ray behind, and
        the next run starts (and stops) its own."""
        if self._slots:
            return
        if not ray.is_initialized():
            self._init_ray()
        try:
            self._start_pool()
        except BaseException:
            self.shutdown()
            raise

    def _init_ray(self) -> None:
        """``ray.init``: at ``address`` (checked first), or a private local Ray, never a stale
        or another user's cluster found on this host (at an address, with Ray's own limit on a
        silent GCS raised: :func:`_reconnect_window`). ``ray.init`` puts its own ``SIGTERM``
        handler in place (exit 1, a C dump); the one before it is put back, whatever it was
        (a function, ``SIG_DFL``, ``SIG_IGN``), on the main thread, where one can be set, and
        Ray's failure signal handler is not installed in this process, so that its removal in
        ``ray.shutdown`` cannot take that handler away (:func:`_signals_left_to_python`)."""
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True, "configure_logging": False}
        if self.address:
            check_reachable(self.address)  # else ray.init retries an address that is no cluster's for minutes
            kwargs["address"] = self.address
        else:
            kwargs["address"] = "local"
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        before = set() if self.address else set(reaper.descendants(os.getpid()))
        with _sigterm_kept():
            try:
                with (_reconnect_window(bool(self.address), self.grace_s), _start_held(not self.address),
                      _signals_left_to_python()):
                    ray.init(**kwargs)
                self._started_ray = True
                route_worker_deaths()  # one warning line a dead worker, not Ray's paragraph on stdout
                self._watch = _watch_of(self.address)
            except Exception as exc:  # ValueError, ConnectionError, RuntimeError, TimeoutError ...: one line
                self._undo_init(before)
                if not self.address:
                    raise
                raise ExecutorError(f"cannot join the Ray cluster at {self.address}: {type(exc).__name__}: "
                                    f"{_first_line(exc)}; {ADDRESS_FORMS}") from None
            except BaseException:  # a Ctrl-C half-way: what it had started goes with it
                self._undo_init(before)
                raise

    def _undo_init(self, before: set[tuple[int, int]]) -> None:
        """End what a ``ray.init`` that raised (a Ctrl-C or SIGTERM in it, most often) had
        started: Ray's shutdown where it got as far as connecting; and, for a private local
        Ray, every process below this one not there before (``before``), which a start cut
        short leaves behind (its GCS and raylet, and their agents, which outlived this
        process)."""
        if ray.is_initialized():
            _shutdown_ray()
        if not self.address:
            reaper.end_new_descendants(before)

    def _start_pool(self) -> None:
        """The actors (as many as :meth:`_pool_size` allows), and, in a Ray of our own, a wait
        for them to be placed and the reaper that stops that Ray if this process is killed."""
        self._chunk = self._batch_size()
        self._remote = ray.remote(EvaluatorActor).options(
            num_cpus=self.config.num_cpus, num_gpus=self.config.num_gpus, memory=self.config.memory_bytes,
            resources=dict(self.config.custom_resources) or None, max_restarts=0, max_concurrency=4,
        )
        for place in range(self._pool_size()):
            self._slots.append(self._new_slot(place))
        if self._started_ray:
            with contextlib.suppress(RayError):  # agents start with the head; actors once placed
                ray.wait([s.ready for s in self._slots], num_returns=len(self._slots), timeout=30)
            reaper.watch()  # a kill -9 of this process leaves none of its Ray's processes behind

    def setup_problem(self, wait_s: float = SETUP_CHECK_S) -> str | None:
        """The first setup failure any actor reports within ``wait_s`` (each sets its
        evaluator up as it is placed), or a worker that died while it set it up; None once
        every actor's setup has succeeded, or when ``wait_s`` ends first (an actor still
        loading, or one not placed yet)."""
        asked = [s.ready for s in self._slots if s.ready is not None]
        deadline = time.monotonic() + wait_s
        while asked:
            ready, asked = ray.wait(asked, num_returns=1, timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                return None
            try:
                _, error = ray.get(ready[0])
            except RayError as exc:
                return f"evaluator setup failed: the worker died while it set the evaluator up ({_first_line(exc)})"
            if error is not None:
                return str(error)
        return None

    def _batch_size(self) -> int:
        """The evaluator's ``max_batch_size``, read off its class: no instance is made in the
        driver (its ``__init__`` runs in the workers, where a failure is a setup failure).
        One that cannot be used (refused by the campaign's check before this) counts as 1
        here; each worker's setup fails on it."""
        cls = registry.evaluator_class(self.config.kind, self.config.config, self.config.target)
        try:
            return registry.batch_size(cls)
        except ValueError:
            return 1

    def _required(self) -> dict[str, float]:
        """What one actor reserves, by Ray resource name (only what it asks a non-zero amount of)."""
        required = {name: float(amount) for name, amount in self.config.custom_resources.items() if amount > 0}
        if self.config.num_cpus > 0:
            required["CPU"] = self.config.num_cpus
        if self.config.num_gpus > 0:
            required["GPU"] = self.config.num_gpus
        if self.config.memory_bytes is not None:
            required["memory"] = self.config.memory_bytes
        return required

    def _pool_size(self) -> int:
        """min(``max_in_flight``, the actors the alive nodes can hold: each node's own count,
        summed). An actor is placed on one node, so a start where no node can hold one (3
        CPUs an actor on 2-CPU nodes, whatever their sum) is refused: such an actor is never
        placed and the run would never end (:class:`ExecutorError`, naming the largest node's).

        An actor that reserves nothing (``num_cpus: 0`` and no other resource) is one per
        CPU of the alive nodes at most, with a warning where ``max_in_flight`` asked for
        more: Ray would place any number, and each is a process of its own (``max_in_flight``
        1000 started a thousand Python processes, each importing the evaluator). The
        evaluations beyond queue on them; a fraction (``num_cpus: 0.25``) places more."""
        required = self._required()
        nodes = _alive_node_resources()
        fits = _node_fits(nodes, required)
        if fits is None:
            cpus = max(1, int(sum(node.get("CPU", 0.0) for node in nodes)))
            if self.config.max_in_flight > cpus:
                log.warning("resources reserve nothing per evaluation (num_cpus: 0): %d workers, one per CPU of the "
                            "Ray cluster, not max_in_flight's %d; the evaluations beyond queue on them (give "
                            "resources.num_cpus a fraction, 0.25 for four workers a CPU, to start more)",
                            cpus, self.config.max_in_flight)
            return max(1, min(self.config.max_in_flight, cpus))
        if fits == 0:
            raise ExecutorError(_unplaceable(nodes, required))
        return max(1, min(self.config.max_in_flight, fits))

    def _new_slot(self, place: int) -> _Slot:
        """An actor for the pool's place ``place`` (its setup seed follows it)."""
        actor = self._remote.remote(self.config, place)
        return _Slot(actor, actor.ready.remote())

    def _is_ready(self, index: int) -> bool:
        """Whether actor ``index`` has set its evaluator up (successfully or not: a failed
        setup fails the work pushed to it, which stops the run); work waits in the queue
        until it has (a replacement may wait for a node with the resources it needs). A
        worker that dies in its setup is replaced, up to :data:`SETUP_DEATHS` in a row, and
        one whose setup runs past max(``timeout_s``, :data:`MIN_SETUP_LIMIT_S`) counts as
        failed: then every task fails as a setup failure (:class:`WorkerSetupLost`)."""
        slot = self._slots[index]
        if slot.ready is None:
            return True
        done, _ = ray.wait([slot.ready], timeout=0)
        if not done:
            limit = max(self.config.timeout_s, MIN_SETUP_LIMIT_S)
            if time.monotonic() - slot.born > limit:
                self._setup_lost = f"the evaluator's setup on a worker did not end within {limit:g} s"
            return False
        try:
            slot.worker, _ = ray.get(slot.ready)
        except RayError as exc:
            if self._gcs_silent_now():  # the cluster, not the setup: read again once the GCS answers
                return False
            self._setup_deaths += 1
            if self._setup_deaths >= SETUP_DEATHS:
                self._setup_lost = (f"{self._setup_deaths} workers in a row died while they set the evaluator "
                                    f"up ({_first_line(exc)})")
            self._replace_actor(index)
            return False
        self._setup_deaths = 0
        slot.ready = None
        return True

    def capacity(self) -> int:
        return max(1, len(self._slots)) * self._chunk

    def shutdown(self) -> None:
        """Tear the workers' evaluators down (:meth:`_close_workers`), then kill every actor
        and stop the Ray this executor started. Where the GCS at ``--address`` is silent no
        teardown is asked and only actors that answered ``ready`` are killed (Ray reaches
        them directly; killing one whose creation the GCS never answered blocks until Ray's
        own limit ends the process, :data:`RAY_RECONNECT_S`).

        SIGINT and SIGTERM are held throughout (:func:`~entropy_atlas.interrupts.held_interrupts`):
        the first acts once Ray is shut down (the command then stops as it does for any
        interrupt: `stopped …`, exit 130, what the run wrote kept), so the shutdown, bounded
        by :data:`TEARDOWN_S` and Ray's own, is never cut half-way; a second acts at once,
        and even then the actors are killed and Ray shut down before it goes on."""
        with held_interrupts():
            silent = bool(self._slots) and self._gcs_silent_now()
            try:
                if not silent:
                    self._close_workers()
            except Exception:  # whatever Ray says now, the actors are killed below
                pass
            finally:  # a second interrupt during the teardowns too
                for slot in self._slots:
                    if not (silent and slot.ready is not None):
                        with contextlib.suppress(Exception):
                            ray.kill(slot.actor)
                self._slots.clear()
                if self._started_ray and ray.is_initialized():
                    _shutdown_ray()
                    self._started_ray = False
                    self._watch = None

    def _close_workers(self) -> None:
        """Ask every actor whose setup has ended to call its evaluator's ``teardown``
        (:meth:`EvaluatorActor.close`), and wait up to :data:`TEARDOWN_S` for all of them;
        a failed teardown is a one-line warning, a run's outcome stays as it was. A busy
        actor cuts its evaluation short first: the run has already written it off (a
        stopped run puts it back to ``pending`` uncharged, a failed or lost one as its rule
        says), and its outcome is never read. One still setting up is killed without a
        teardown, as is one that has not answered in time (an evaluation that ignores
        being cut short, or one stuck in C code)."""
        ended = [s for s in self._slots if s.ready is None]
        setting_up = [s for s in self._slots if s.ready is not None]
        if setting_up:
            done, _ = ray.wait([s.ready for s in setting_up], num_returns=len(setting_up), timeout=0)
            ended += [s for s in setting_up if any(_same_ref(s.ready, ref) for ref in done)]
        if not ended:
            return
        calls = [s.actor.close.remote() for s in ended]
        answered, _ = ray.wait(calls, num_returns=len(calls), timeout=TEARDOWN_S)
        for ref in answered:
            with contextlib.suppress(RayError):
                if (problem := ray.get(ref)) is not None:
                    log.warning("%s", problem)

    # -- work ----------------------------------------------------------------
    def submit(self, tasks: list[EvaluationTask]) -> None:
        """Queue ``tasks``; a retried one (``attempt`` > 1: its worker died under it, or an
        earlier scheduler was killed with it in flight) runs alone, with nothing queued
        behind it, so that a worker dying under it again is known to have died of it."""
        for task in tasks:
            self._queue_of(task).append(task)
        self._dispatch()

    def _queue_of(self, task: EvaluationTask) -> collections.deque[EvaluationTask]:
        """The retries' queue for a retried task (``attempt`` > 1), else the queue."""
        return self._solo if task.attempt > 1 else self._queue

    def in_flight(self) -> int:
        return len(self._queue) + len(self._solo) + sum(len(b.tasks) for s in self._slots for b in s.held)

    def _dispatch(self) -> None:
        """Push queued tasks to ready actors breadth-first, up to ``PIPELINE`` batches an
        actor, and keep one ``results`` call under way for every actor holding work."""
        now = time.time()
        pushes: dict[int, list[tuple[int, list[EvaluationTask]]]] = {}
        for index, slot in enumerate(self._slots):  # retries first, each alone on an idle actor
            if not self._solo:
                break
            if slot.held or not self._is_ready(index):
                continue
            batch = _Batch([self._solo.popleft()], started=now, solo=True)
            self._started.extend(t.evaluation_id for t in batch.tasks)
            slot.held.append(batch)
            pushes.setdefault(index, []).append((slot.pushed, batch.tasks))
            slot.pushed += 1
        for depth in range(1, PIPELINE + 1):
            for index, slot in enumerate(self._slots):
                if not self._queue:
                    break
                if slot.solo or len(slot.held) >= depth or not self._is_ready(index):
                    continue
                batch = _Batch([self._queue.popleft() for _ in range(min(self._chunk, len(self._queue)))])
                if not slot.held:
                    batch.started = now
                    self._started.extend(t.evaluation_id for t in batch.tasks)
                slot.held.append(batch)
                pushes.setdefault(index, []).append((slot.pushed, batch.tasks))
                slot.pushed += 1
        for index, slot in enumerate(self._slots):  # one call an actor: its pushes ride on its next `results`
            batches = pushes.get(index, [])
            if slot.held and slot.results is None:
                slot.results = slot.actor.results.remote(LONG_POLL_S, batches)
            elif batches:
                slot.actor.push.remote(batches)
        self._report_started(self._started)
        self._started = []

    def poll(self, timeout: float) -> list[Outcome]:
        """Outcomes that came back, waiting up to ``timeout`` for the first (one ``ray.wait``
        on every busy actor's ``results`` call); with no actor busy, waits as long for an
        actor to come up when work is queued for one. While the GCS at ``--address`` is
        silent it waits ``timeout`` and touches nothing (:meth:`_cluster_silent`: a worker's
        failed call is kept to be read once the GCS answers again), and past
        the grace (``ATLAS_RAY_GRACE_S``) it raises :class:`ClusterLost`, before it takes any
        outcome."""
        if self._cluster_silent():
            time.sleep(timeout)
            return []
        self._dispatch()
        outcomes: list[Outcome] = []
        if self._setup_lost is not None:  # no worker can be set up: the queued work fails so, and the run stops
            tasks = [*self._solo, *self._queue]
            self._solo.clear()
            self._queue.clear()
            if tasks:
                return setup_failure(tasks, WorkerSetupLost(self._setup_lost))
        waiting = {s.results: i for i, s in enumerate(self._slots) if s.results is not None}
        if waiting:
            refs = list(waiting)
            ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
            if ready:
                ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            for ref in ready:
                index = waiting[ref]
                if _same_ref(self._slots[index].results, ref):  # else its actor was replaced just now
                    outcomes += self._collect(index)
        elif self._queue or self._solo:
            coming = [s.ready for s in self._slots if s.ready is not None]
            if coming:
                with contextlib.suppress(RayError):
                    ray.wait(coming, num_returns=1, timeout=timeout)
        if self._watch is not None and self._watch.silent_since is not None:  # found silent by a failed call
            return outcomes
        outcomes += self._enforce_timeouts()
        self._dispatch()
        return outcomes

    def _collect(self, index: int) -> list[Outcome]:
        """What actor ``index``'s ``results`` call brought: whole batches, in order; the
        batch after the last one returned has started. A dead actor's running batch is
        ``lost`` and the rest go back to the queue."""
        slot = self._slots[index]
        ref, slot.results = slot.results, None
        try:
            outcomes: list[Outcome] = ray.get(ref, timeout=30)
        except RayError as exc:
            if self._gcs_silent_now():  # the cluster, not this worker: read again once the GCS answers
                slot.results = ref
                return []
            # The batch that ran, and the one queued behind it: a worker that died as that one began
            # may have finished the first (its outcomes lost with the reply), so both count as started,
            # both are lost, and each evaluation is retried alone (submit): the one that kills its
            # worker again is then known.
            lost: list[_Batch] = []
            while slot.held and len(lost) < PIPELINE and (slot.held[0].started is not None or lost):
                lost.append(slot.held.popleft())
            for batch in lost[1:]:
                self._started.extend(t.evaluation_id for t in batch.tasks)
            self._replace_actor(index)
            reason = f"worker lost: {type(exc).__name__}: {_first_line(exc)}"
            return [Outcome(t.evaluation_id, "lost", error=reason, worker=slot.worker) for b in lost for t in b.tasks]
        returned = {o.evaluation_id for o in outcomes}
        while slot.held and all(t.evaluation_id in returned for t in slot.held[0].tasks):
            batch = slot.held.popleft()
            if batch.started is None:  # it started and ended between two looks
                self._started.extend(t.evaluation_id for t in batch.tasks)
        if any(o.worker_spent for o in outcomes):  # it started nothing after that batch: the rest go back
            self._replace_actor(index)
            return outcomes
        if slot.held and slot.held[0].started is None:
            slot.held[0].started = time.time()
            self._started.extend(t.evaluation_id for t in slot.held[0].tasks)
        return outcomes

    def _enforce_timeouts(self) -> list[Outcome]:
        outcomes: list[Outcome] = []
        now = time.time()
        for index, slot in enumerate(self._slots):
            if not slot.held or slot.held[0].started is None:
                continue
            head = slot.held[0]
            limit = self.config.timeout_s * len(head.tasks)
            if now - head.started <= limit:
                continue
            slot.held.popleft()
            outcomes += [Outcome(t.evaluation_id, "failed", error=f"timeout: ran past {limit:g} s",
                                 worker=slot.worker, seconds=now - head.started) for t in head.tasks]
            self._replace_actor(index)
        return outcomes

    def _gcs_silent_now(self) -> bool:
        """Whether the GCS at ``--address`` is silent, asked now: a worker's call failed, and
        a cluster gone is no worker's loss. Never an earlier answer: the heartbeat's, a moment
        before the cluster was stopped, had the run take its dead workers for lost and replace
        them, and killing a replacement the GCS never registered blocks (:meth:`_replace_actor`)."""
        return self._watch is not None and self._watch.silent(0.0)

    def _cluster_silent(self) -> bool:
        """Whether the GCS at ``--address`` is silent: asked every :data:`HEARTBEAT_S`, and
        every :data:`PROBE_EVERY_S` once silent (a worker's failed call asks at once:
        :meth:`_gcs_silent_now`). Silent for the grace (``ATLAS_RAY_GRACE_S``) is
        :class:`ClusterLost`; one that answers again within it (a GCS restarted, Ray
        reconnected) lets the run go on."""
        watch = self._watch
        if watch is None or not watch.silent(PROBE_EVERY_S if watch.silent_since is not None else HEARTBEAT_S):
            return False
        if watch.silent_for() >= self.grace_s:
            named = watch.target if self.address in ("auto", "local") else self.address
            raise ClusterLost(f"the Ray cluster at {named} stopped answering (its GCS gave no answer "
                              f"for {self.grace_s:g} s: {watch.problem}); campaign {self.config.campaign!r} is stopped")
        return True

    def _replace_actor(self, index: int) -> None:
        """Kill and replace actor ``index``; the batches it still held go back to the queue
        (a retry to the front of the retries). One that never answered ``ready`` is killed
        only while the GCS at ``--address`` answers: Ray waits for such an actor's creation to
        be registered before it kills it, and with the GCS gone ``ray.kill`` blocked until
        Ray's own limit ended the process (:data:`RAY_RECONNECT_S`). Dropped, Ray ends it
        once the GCS answers again (no handle to it is left), or with this process, its owner."""
        slot = self._slots[index]
        for batch in reversed(slot.held):
            for task in reversed(batch.tasks):
                self._queue_of(task).appendleft(task)
        if slot.ready is None or not self._gcs_silent_now():
            with contextlib.suppress(Exception):
                ray.kill(slot.actor)
        self._slots[index] = self._new_slot(index)


@contextlib.contextmanager
def _reconnect_window(joined: bool, grace_s: float) -> Iterator[None]:
    """Around ``ray.init`` at an address: Ray's limit on a silent GCS in this process raised
    to :data:`RAY_RECONNECT_S`, or 60 s past ``grace_s`` where that is longer (past it Ray
    ends the process with a line of its own, exit 1, and at its default of 60 s it could do
    so before the run stops itself after ``grace_s``), unless the environment sets one. Ray
    reads it as it connects; the environment is put back after."""
    if not joined or RECONNECT_ENV in os.environ:
        yield
        return
    os.environ[RECONNECT_ENV] = str(max(RAY_RECONNECT_S, math.ceil(grace_s) + 60))
    try:
        yield
    finally:
        os.environ.pop(RECONNECT_ENV, None)


def _shutdown_ray() -> None:
    """``ray.shutdown``, then this process's SIGTERM handler set again (:func:`_sigterm_kept`).
    Ray's shutdown puts the signal's action back to the default beneath Python's handler
    (which Python still reports as set): after it, a script's own handler or ``SIG_IGN`` no
    longer held, and a SIGTERM killed the process without a word."""
    with _sigterm_kept():
        ray.shutdown()


@contextlib.contextmanager
def _sigterm_kept() -> Iterator[None]:
    """This process's SIGTERM handler set again as the block ends, whatever it was (a
    function, ``SIG_DFL``, ``SIG_IGN``), on the main thread, where one can be set: ``ray.init``
    puts its own in place, and ``ray.shutdown`` resets the action beneath Python's."""
    handler = signal.getsignal(signal.SIGTERM)  # None: one not set from Python, which cannot be set again
    try:
        yield
    finally:
        if handler is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, handler)


@contextlib.contextmanager
def _signals_left_to_python() -> Iterator[None]:
    """Around ``ray.init``: the driver's core worker made without Ray's failure signal
    handler (absl's, on SIGTERM, SIGSEGV, SIGABRT, …), as ``RAY_DISABLE_FAILURE_SIGNAL_HANDLER``
    asks, for this process only (its workers keep theirs). This process's SIGTERM handler is
    set again after ``ray.init`` anyway (:func:`_sigterm_kept`), but Ray's shutdown removes
    the failure handler, and with it the signal's action, set back to the default beneath
    Python's handler: a SIGTERM while ``ray.shutdown`` ended Ray's processes (a second or
    more after the last evaluation) killed the process, exit −15 and no word. A Ray
    without that setting (it is private) is let be."""
    constants = getattr(ray._private, "ray_constants", None)
    name = "RAY_DISABLE_FAILURE_SIGNAL_HANDLER"
    if constants is None or not hasattr(constants, name):
        yield
        return
    before = getattr(constants, name)
    setattr(constants, name, True)
    try:
        yield
    finally:
        setattr(constants, name, before)


@contextlib.contextmanager
def _start_held(local: bool) -> Iterator[None]:
    """Around ``ray.init`` starting a private local Ray (``local``): SIGINT and SIGTERM held
    until it returns (:func:`entropy_atlas.interrupts.held_interrupts`; a second acts at
    once), and Ray's own SIGTERM handler, which it sets as it begins (``sys.exit(15)`` from
    wherever the start is), not set. Cut short inside the driver's core worker, the start
    left a half-made one that crashed the process at exit (SIGSEGV, after the command had
    said it stopped); held, it ends, and the stop shuts it down whole. A start at an
    address (which may wait on a far cluster) stays interruptible."""
    if not local:
        yield
        return
    utils = ray._private.utils
    set_sigterm_handler = getattr(utils, "set_sigterm_handler", None)  # private: a Ray without it is let be
    if set_sigterm_handler is not None:
        utils.set_sigterm_handler = lambda _handler: None
    try:
        with held_interrupts():
            yield
    finally:
        if set_sigterm_handler is not None:
            utils.set_sigterm_handler = set_sigterm_handler


def _watch_of(address: str | None) -> _ClusterWatch | None:
    """The watch on the GCS Ray joined at ``address`` (``auto`` resolved); None for a private
    local Ray (this process's own) and under Ray Client (``ray://``: its server stands
    between this process and the GCS)."""
    if not address or address.startswith("ray://"):
        return None
    return _ClusterWatch(ray.get_runtime_context().gcs_address)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _same_ref(a: Any, b: Any) -> bool:
    """Whether two object refs name the same object: by id, for ``ObjectRef`` and Ray
    Client's ``ClientObjectRef`` alike (``ray.wait`` under Ray Client hands back new
    objects, so identity never matches); None is no ref."""
    return a is not None and b is not None and a.binary() == b.binary()


# -- the cluster's nodes ------------------------------------------------------
def _alive_node_resources() -> list[dict[str, float]]:
    """Each alive node's total resources (``ray.nodes()``), as Ray counts them."""
    return [dict(node.get("Resources") or {}) for node in ray.nodes() if node.get("Alive")]


def _node_fits(nodes: list[dict[str, float]], required: dict[str, float]) -> int | None:
    """How many actors each asking ``required`` the ``nodes`` hold together: per node the
    fewest any one resource allows, summed; None where an actor asks for nothing (no
    limit but ``max_in_flight``)."""
    if not required:
        return None
    return sum(min(int(node.get(name, 0.0) / amount + 1e-9) for name, amount in required.items())
               for node in nodes)


def _unplaceable(nodes: list[dict[str, float]], required: dict[str, float]) -> str:
    """Why no node can hold one actor: the first resource no node has enough of, with the
    largest node's amount (and the cluster's sum, which does not help), else the nodes'
    own resources where each lacks something else."""
    for name, amount in required.items():
        largest = max((node.get(name, 0.0) for node in nodes), default=0.0)
        if largest < amount:
            total = sum(node.get(name, 0.0) for node in nodes)
            return (f"evaluations ask for {_amount(name, amount)} of {name!r} each but the Ray cluster has "
                    f"{_amount(name, largest)} on its largest node ({_amount(name, total)} over {len(nodes)} "
                    f"alive node(s)); one evaluation's worker runs on one node")
    held = "; ".join(", ".join(f"{n} {_amount(n, node.get(n, 0.0))}" for n in required) for node in nodes[:4])
    asked = ", ".join(f"{n} {_amount(n, a)}" for n, a in required.items())
    return (f"evaluations ask for {asked} each but no node of the Ray cluster has all of it (its nodes have: "
            f"{held}{'; ...' if len(nodes) > 4 else ''}); one evaluation's worker runs on one node")


def _amount(name: str, value: float) -> str:
    """A resource amount as said to the user (``memory`` in MiB)."""
    return f"{value / 2**20:g} MiB" if name == "memory" else f"{value:g}"


# -- the address ---------------------------------------------------------------
def check_reachable(address: str) -> None:
    """Raise :class:`ExecutorError` (one line, naming ``address`` and the forms ``atlas run``
    takes) unless ``address`` can be a Ray cluster's: an http(s):// address (the dashboard
    is for ``atlas submit``) or one without a port is refused at once; nothing answering at
    ``HOST:PORT`` within :data:`CONNECT_TIMEOUT_S` is refused; and once connected, a
    ``HOST:PORT`` must answer as a Ray GCS, a ``ray://HOST:PORT`` as a gRPC server that is
    not the GCS (the Ray Client server) within :data:`PROBE_S` (:func:`_probe_gcs`).
    ``auto`` and ``local`` are left to Ray."""
    if address in ("auto", "local"):
        return
    if address.lower().startswith(("http://", "https://")):
        raise ExecutorError(f"{address} is an HTTP address, not a Ray cluster's; {ADDRESS_FORMS}")
    client = address.startswith("ray://")
    host, port = _host_port(address)
    import socket

    try:
        socket.create_connection((host.strip("[]"), port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ExecutorError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None
    problem = _probe_gcs(f"{host}:{port}", client)
    if problem is not None:
        raise ExecutorError(f"{address} is not a Ray cluster's {'Ray Client server' if client else 'GCS'}: "
                            f"{problem}; {ADDRESS_FORMS}")


def _host_port(address: str) -> tuple[str, int]:
    """``HOST`` and ``PORT`` of ``[ray://]HOST:PORT`` (``ray://HOST`` means Ray Client's
    10001); any other form is an :class:`ExecutorError` naming the forms."""
    bare = address.removeprefix("ray://")
    host, colon, port = bare.rpartition(":")
    if address.startswith("ray://") and (not colon or bare.endswith("]")):
        host, port = bare, "10001"
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in host:
        raise ExecutorError(f"{address!r} is not a Ray cluster's address (HOST:PORT); {ADDRESS_FORMS}")
    return host, int(port)


def _probe_gcs(target: str, client: bool) -> str | None:
    """Ask ``target`` for its GCS cluster id (one gRPC call, :data:`PROBE_S` at most); what
    is wrong with it for a plain address (``client`` False: it must answer as the GCS) or a
    ``ray://`` one (it must answer as a gRPC server that is not the GCS), or None."""
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    channel = _grpc_channel(target)
    try:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=PROBE_S)
        code, details = grpc.StatusCode.OK, ""
    except grpc.RpcError as exc:
        code, details = exc.code(), str(exc.details() or "")
    finally:
        channel.close()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        if "HTTP/2" in details:  # it answered, in some other protocol: which, it says itself
            return _not_grpc(target)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return f"it accepts connections but gave no gRPC answer within {PROBE_S:g} s"
        return f"no gRPC answer ({(details.strip().splitlines() or ['?'])[0]})"
    if client and code == grpc.StatusCode.OK:
        return "that port is the GCS's; ray:// takes the Ray Client server's port (10001), or drop ray://"
    if not client and code == grpc.StatusCode.UNIMPLEMENTED:
        return "a gRPC server other than the GCS answers there (a Ray Client server? then ray://HOST:PORT)"
    return None


def _not_grpc(target: str) -> str:
    """What answers at ``target`` that is not gRPC, from its reply to a plain HTTP request
    (one connection, :data:`PROBE_S` at most): an HTTP server (a Ray dashboard, on port
    8265), or something else, quoted (Redis, which listens on 6379, Ray's default GCS port,
    replies ``-ERR …`` or closes)."""
    import socket

    host, _, port = target.rpartition(":")
    reply = b""
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_S) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
            reply = conn.recv(200)
    except (OSError, ValueError):
        pass
    if reply.startswith(b"HTTP/"):
        return "an HTTP server answers there (the dashboard's port?), not Ray's gRPC"
    first = reply.decode("ascii", "replace").strip().splitlines()[0][:60] if reply.strip() else ""
    said = f"it replied {first!r}" if first else "it closed the connection unanswered"
    return f"something other than Ray answers there ({said}; another service on that port?), not Ray's gRPC"


def _grpc_channel(target: str) -> Any:
    """A gRPC channel to ``target`` as Ray's own tools open one (TLS and token auth as
    this environment says), or a plain one where that helper is missing."""
    try:
        from ray._private.grpc_utils import init_grpc_channel
    except ImportError:
        import grpc

        return grpc.insecure_channel(target)
    return init_grpc_channel(target)
