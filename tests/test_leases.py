"""Leases: one scheduler per campaign, even when many race for it at the same instant, and
a scheduler that lost its lease writes nothing more (rows, results or status). A holder is
dead only when certain: its process was in this PID namespace, and is gone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from archive.errors import LeaseConflict
from archive.records import NewEvaluation, lease_is_live
from archive.store import Store
from entropy_atlas.holders import holder_is_dead
from search.campaigns import open_campaign
from search.scheduler import LeaseLost, Scheduler, lease_holder_id
from search.spec import parse_spec
from tests.conftest import quadratic_spec

RACES = 50
RACERS = 6


def test_exactly_one_of_many_racing_schedulers_gets_the_lease(storage_url: str) -> None:
    """50 races of 6 schedulers, each with its own connection, released at one barrier."""
    setup = Store(storage_url)
    campaign = open_campaign(setup, parse_spec(quadratic_spec()))
    stores = [Store(storage_url) for _ in range(RACERS)]
    try:
        with ThreadPoolExecutor(RACERS) as pool:
            for race in range(RACES):
                barrier = threading.Barrier(RACERS)
                holders = [f"racer-{race}-{i}" for i in range(RACERS)]

                def take(i: int, barrier: threading.Barrier = barrier, holders: list[str] = holders) -> bool:
                    barrier.wait()
                    return stores[i].acquire_lease(campaign.id, holders[i], ttl_s=60) is None

                wins = list(pool.map(take, range(RACERS)))
                assert sum(wins) == 1, f"race {race}: {sum(wins)} winners"
                winner = holders[wins.index(True)]
                assert setup.require_campaign("quad").lease_holder == winner
                setup.release_lease(campaign.id, winner)
    finally:
        for s in stores:
            s.close()
        setup.close()


def test_a_scheduler_that_lost_its_lease_writes_nothing(storage_url: str) -> None:
    store = Store(storage_url)
    try:
        campaign = open_campaign(store, parse_spec(quadratic_spec()))
        old, new = lease_holder_id(), lease_holder_id()
        assert store.acquire_lease(campaign.id, old, ttl_s=-1) is None  # expires at once
        assert store.acquire_lease(campaign.id, new, ttl_s=60) is None
        assert store.set_status(campaign.id, new, "running")
        row = NewEvaluation(seq=0, params={"a": 0.1, "b": 0.2}, x=[0.1, 0.2], proposer="test")
        with pytest.raises(LeaseConflict):
            store.add_pending(campaign.id, [row], holder=old)
        assert not store.set_status(campaign.id, old, "stopped")
        assert not store.finish_run(campaign.id, old, "stopped")
        record = store.require_campaign("quad")
        assert record.status == "running" and record.lease_holder == new
        assert store.count_created(campaign.id) == 0
        store.add_pending(campaign.id, [row], holder=new)
        with pytest.raises(LeaseConflict, match="written by another scheduler"):
            store.add_pending(campaign.id, [NewEvaluation(seq=0, params={"a": 0.5, "b": 0.5}, x=[0.5, 0.5],
                                                          proposer="test")], holder=new)
    finally:
        store.close()


def test_a_lease_is_live_until_its_expiry_and_not_after() -> None:
    """``archive.records.lease_is_live``: live while ``expires >= now`` (the expiry instant
    itself included), dead as soon as ``now`` passes it, as ``Store.acquire_lease`` takes a
    lease whose ``expires < now``; no grace period."""
    assert lease_is_live("elsewhere:1:x", 100.0, now=100.0)
    assert lease_is_live("elsewhere:1:x", 100.0, now=99.5)
    assert not lease_is_live("elsewhere:1:x", 100.0, now=100.001)
    assert not lease_is_live("elsewhere:1:x", 100.0, now=100.5)
    assert not lease_is_live(None, 100.0, now=0.0) and not lease_is_live("elsewhere:1:x", None, now=0.0)


def test_a_lease_expired_half_a_second_ago_reads_interrupted_and_is_taken(storage_url: str) -> None:
    """A ``running`` campaign whose scheduler (another host's, so never known dead) let its
    lease lapse 0.5 s ago: every reader says ``interrupted`` (``archive.records.live_status``)
    and a new scheduler takes the lease, by one rule (``expires < now``); 30 s ahead it is running."""
    store = Store(storage_url)
    try:
        campaign = open_campaign(store, parse_spec(quadratic_spec()))
        holder = "elsewhere:1:deadbeef"
        store.update_campaign(campaign.id, status="running", lease_holder=holder, lease_expires=time.time() + 30)
        assert store.require_campaign("quad").live_status() == "running"
        store.update_campaign(campaign.id, lease_expires=time.time() - 0.5)
        assert store.require_campaign("quad").live_status() == "interrupted"
        assert store.acquire_lease(campaign.id, lease_holder_id(), 60, holder_is_dead) is None
    finally:
        store.close()


def test_a_scheduler_whose_lease_is_taken_stops_with_lease_lost(sqlite_url: str) -> None:
    """Another scheduler takes the lease mid-run: the first stops, and the status it would
    have written (``stopped``) does not overwrite the new holder's ``running``."""
    from search import api
    from workers.executors import make_executor

    spec = parse_spec(quadratic_spec(search__budget=200, search__batch_size=5, search__max_in_flight=5))
    store = Store(sqlite_url)
    try:
        campaign = open_campaign(store, spec)
        prepared = api.prepare(store, spec, "inline", None)
        usurper = "elsewhere:1:deadbeef"
        calls = {"n": 0}

        def progress(_stats: object) -> None:
            calls["n"] += 1
            if calls["n"] == 2:
                Store(sqlite_url).update_campaign(campaign.id, lease_holder=usurper, lease_expires=4e9,
                                                  status="running")

        scheduler = Scheduler(store, prepared.setup.committed(campaign), prepared.proposer,
                              make_executor("inline", api.executor_config(spec)), progress=progress, lease_ttl_s=0.01)
        scheduler._report = lambda: scheduler.progress(scheduler.stats())  # type: ignore[method-assign]
        with pytest.raises(LeaseLost):
            scheduler.run()
        record = store.require_campaign("quad")
        assert record.lease_holder == usurper and record.status == "running"
    finally:
        store.close()


# -- who holds it: a process id names a process only in its PID namespace -------------
def _our_place() -> tuple[str, str]:
    """This process's boot id (no dashes) and PID namespace inode, read here."""
    with open("/proc/sys/kernel/random/boot_id") as fh:
        boot = fh.read().strip().replace("-", "")
    return boot, os.readlink("/proc/self/ns/pid").partition("[")[2].rstrip("]")


def _gone_pid() -> int:
    """The id of a process of this namespace that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def on_linux() -> None:
    if not os.path.exists("/proc/self/ns/pid"):
        pytest.skip("PID namespaces are Linux's")


def test_a_holder_of_another_pid_namespace_or_boot_is_not_dead(on_linux: None) -> None:
    """``vm:11:…`` from a container sharing the host's name: process 11 is not ours to look for."""
    host, pid, (boot, pidns) = socket.gethostname(), _gone_pid(), _our_place()
    assert holder_is_dead(f"{host}:{pid}:deadbeef:{boot}:{pidns}")  # ours, gone
    assert not holder_is_dead(f"{host}:{pid}:deadbeef:{boot}:{int(pidns) + 1}")  # another namespace
    assert not holder_is_dead(f"{host}:{pid}:deadbeef:{'0' * len(boot)}:{pidns}")  # another boot
    assert not holder_is_dead(f"{host}:{pid}:deadbeef:?:?")  # a place its scheduler could not read
    assert not holder_is_dead(f"elsewhere:{pid}:deadbeef:{boot}:{pidns}")  # another host name


def test_a_holder_of_this_pid_namespace_is_dead_only_when_its_process_is(on_linux: None) -> None:
    ours = lease_holder_id()
    assert ours.split(":")[3:] == list(_our_place()) and len(ours) <= 200  # the lease_holder column
    assert not holder_is_dead(ours)
    alive = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        host, (boot, pidns) = socket.gethostname(), _our_place()
        assert not holder_is_dead(f"{host}:{alive.pid}:deadbeef:{boot}:{pidns}")
        assert alive.stdin is not None
        alive.stdin.close()
        deadline = time.monotonic() + 30
        while not holder_is_dead(f"{host}:{alive.pid}:deadbeef:{boot}:{pidns}"):  # a zombie, then reaped
            assert time.monotonic() < deadline, "the exited process was never taken as dead"
            time.sleep(0.01)
    finally:
        alive.wait()
    assert holder_is_dead(f"{socket.gethostname()}:{_gone_pid()}:deadbeef")  # a holder id of before: as before


def _unshare() -> list[str]:
    """``unshare`` into a new PID namespace (with its own ``/proc``), where this user may."""
    base = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"]
    for command in (base, [*base[:1], "--user", "--map-root-user", *base[1:]]):
        try:
            if subprocess.run([*command, "true"], capture_output=True, timeout=30).returncode == 0:
                return command
        except (OSError, subprocess.TimeoutExpired):
            break
    pytest.skip("no unshare into a new PID namespace here")


def test_schedulers_in_two_pid_namespaces_of_one_host_name_are_not_dead_to_each_other(on_linux: None) -> None:
    """The reproduction: a scheduler under ``unshare --pid --fork --mount-proc`` (as in a
    container with ``--network host``) and one outside, each alive, each asking about the other."""
    outside = lease_holder_id()
    probe = ("import sys\n"
             "from entropy_atlas.holders import holder_is_dead, lease_holder_id\n"
             "print(holder_is_dead(sys.argv[1]), lease_holder_id(), flush=True)\n"
             "sys.stdin.read()\n")
    inside = subprocess.Popen([*_unshare(), sys.executable, "-c", probe, outside], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert inside.stdout is not None and inside.stdin is not None
        said_dead, inside_holder = inside.stdout.readline().split()
        assert said_dead == "False", f"the namespaced scheduler took {outside} (alive) as dead"
        host, _pid, token, boot, pidns = inside_holder.split(":")
        assert pidns != _our_place()[1]
        assert not holder_is_dead(inside_holder)
        assert not holder_is_dead(f"{host}:{_gone_pid()}:{token}:{boot}:{pidns}")  # no such PID here: still not dead
        inside.stdin.close()
    finally:
        inside.wait(timeout=30)


def test_a_campaign_held_from_another_pid_namespace_is_running_until_its_lease_expires(
        storage_url: str, on_linux: None) -> None:
    """``atlas status``, ``atlas delete`` and ``atlas resume`` on the host, the scheduler in a
    container: running, refused, refused. Its namespace's twin with that process gone: interrupted."""
    store = Store(storage_url)
    try:
        campaign = open_campaign(store, parse_spec(quadratic_spec()))
        host, pid, (boot, pidns) = socket.gethostname(), _gone_pid(), _our_place()
        for place, live in ((f"{boot}:{int(pidns) + 1}", True), (f"{boot}:{pidns}", False)):
            holder = f"{host}:{pid}:deadbeef:{place}"
            store.update_campaign(campaign.id, status="running", lease_holder=holder, lease_expires=time.time() + 600)
            assert store.require_campaign("quad").live_status() == ("running" if live else "interrupted")
            taker = lease_holder_id()
            assert (store.acquire_lease(campaign.id, taker, 60, holder_is_dead) == holder) is live
            if live:
                with pytest.raises(LeaseConflict):
                    store.delete_campaign(campaign.id)
            else:
                store.release_lease(campaign.id, taker)
                store.update_campaign(campaign.id, lease_holder=holder, lease_expires=time.time() + 600)
                assert store.delete_campaign(campaign.id)["campaigns"] == 1
    finally:
        store.close()
