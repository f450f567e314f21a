"""A campaign survives its database connections being cut mid-run (what a PostgreSQL
restart does to a client): the scheduler waits, reconnects and finishes; nothing lost."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, text

import archive
from search import api
from tests.conftest import POSTGRES_URL, quadratic_spec
from tests.test_scheduler import check_archive


def test_connections_cut_three_times_mid_campaign(postgres_url: str) -> None:
    app = f"atlas-fault-{uuid.uuid4().hex[:8]}"
    url = f"{postgres_url}&application_name={app}"
    spec = quadratic_spec(evaluator={"kind": "python", "target": "tests.support.evaluators:slow_quadratic"},
                          search__budget=80, search__batch_size=4, search__max_in_flight=4)
    result: dict = {}

    def run() -> None:
        try:
            result["stats"] = api.run(spec, storage=url, executor="inline")
        except Exception as exc:  # surfaced by the assertion below
            result["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    admin = create_engine(POSTGRES_URL)
    cuts = 0
    try:
        time.sleep(1.0)
        while worker.is_alive() and cuts < 3:
            with admin.begin() as conn:
                killed = conn.execute(text(
                    "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = :a"
                ), {"a": app}).scalar_one()
            cuts += killed > 0
            time.sleep(0.7)
    finally:
        worker.join(timeout=300)
        admin.dispose()
    assert cuts >= 2, "the connections must be cut while the campaign runs"
    assert "error" not in result, result.get("error")
    assert result["stats"].finished == 80
    check_archive(url, "quad", 80)
    assert archive.open(url).campaign("quad").record.status == "finished"


@pytest.mark.skipif(not POSTGRES_URL, reason="ATLAS_TEST_POSTGRES_URL is not set")
def test_wrong_credentials_fail_fast() -> None:
    from archive.store import StorageError, Store

    bad = POSTGRES_URL.replace("postgres@", "nobody_here@", 1)
    start = time.time()
    with pytest.raises(StorageError, match="cannot open storage"):
        Store(bad)
    assert time.time() - start < 10
