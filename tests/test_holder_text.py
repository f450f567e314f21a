"""A campaign's lease holder is named in messages as a person reads it (``scheduler pid 13211
on host vm``), where the opaque id (``vm:13211:21cef13e:338ea5…:4026531836``) had been shown
whole; the id itself stays what the storage holds and what is compared."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archive.errors import LeaseConflict
from archive.store import Store
from entropy_atlas.holders import holder_text, lease_holder_id
from search import api
from search.campaigns import open_campaign
from search.cli import app
from search.scheduler import CampaignBusy, busy_message
from search.spec import parse_spec
from tests.conftest import quadratic_spec


@pytest.mark.parametrize(("holder", "shown"), [
    ("vm:13211:21cef13e:338ea5d63dee49f4956f3f4030670007:4026531836", "scheduler pid 13211 on host vm"),
    ("node-7:4242:deadbeef", "scheduler pid 4242 on host node-7"),  # an id from before the place was written
    ("another scheduler", "another scheduler"),
    ("usurper", "scheduler usurper"),
])
def test_a_holder_is_shown_as_a_person_reads_it(holder: str, shown: str) -> None:
    assert holder_text(holder) == shown


def test_the_busy_message_names_the_scheduler_by_pid_and_host() -> None:
    """Before: ``campaign 'k1' is being run by scheduler vm:13211:21cef13e:338ea5…:4026531836``."""
    message = busy_message("k1", "vm:13211:21cef13e:338ea5d63dee49f4956f3f4030670007:4026531836", 30)
    assert message.startswith("campaign 'k1' is being run by scheduler pid 13211 on host vm; wait for it")
    assert "338ea5" not in message and "21cef13e" not in message


def test_every_refusal_of_a_live_lease_names_the_holder_readably(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    store = Store(url)
    holder = lease_holder_id()  # this process: live
    try:
        campaign = open_campaign(store, parse_spec(quadratic_spec()))
        assert store.acquire_lease(campaign.id, holder, ttl_s=300) is None
        readable = f"scheduler pid {os.getpid()} on host {socket.gethostname()}"

        with pytest.raises(CampaignBusy) as busy:
            api.run(quadratic_spec(), storage=url, executor="inline")
        with pytest.raises(LeaseConflict) as deleting:
            store.delete_campaign(campaign.id)
        with pytest.raises(LeaseConflict) as fenced:  # a write of a scheduler that lost the lease
            store.fold_starts(campaign.id, holder="another:1:beef")
        shown = CliRunner().invoke(app, ["delete", "quad", "--storage", url, "--yes"])
        assert shown.exit_code == 2
        for text in (str(busy.value), str(deleting.value), str(fenced.value), shown.stderr):
            assert readable in text, text
            assert holder not in text, text
        assert store.require_campaign("quad").lease_holder == holder  # the id itself, as stored
    finally:
        store.close()
