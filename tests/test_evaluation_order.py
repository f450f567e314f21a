"""Evaluation pages come in the order asked and failure lists latest first
(``archive.queries.evaluation_page`` and ``failures``; docs/dashboard.md, the API table:
``order``: ``seq``, ``-seq``, ``finished``, ``-finished``; failures "latest first")."""

from __future__ import annotations

from archive import queries
from archive.store import NewEvaluation, Result, Store


def test_pages_and_failures_come_in_the_order_asked(storage_url: str) -> None:
    """Three evaluations (seq 0, 1, 2) finish in the order 1, 0, 2, one result a call:
    ``-seq`` gives 2, 1, 0; ``finished`` 1, 0, 2; ``-finished`` 2, 0, 1; the failures are
    latest first, 2, 0, 1, and the page of one from offset 1 is 0."""
    store = Store(storage_url)
    try:
        cid = store.create_campaign("order", {"search": {"budget": 20}}, "hash", {"kind": "grid"}).id
        ids = store.add_pending(cid, [NewEvaluation(i, {"i": i}, [0.5], "test") for i in range(3)])
        for i in (1, 0, 2):
            store.record_results(cid, [Result(ids[i], "failed", error=f"boom {i}")], 1.0)

        def page(order: str) -> list[int]:
            return [row["id"] for row in queries.evaluation_page(store, cid, order=order)[1]]

        assert page("seq") == [ids[0], ids[1], ids[2]]
        assert page("-seq") == [ids[2], ids[1], ids[0]]
        assert page("finished") == [ids[1], ids[0], ids[2]]
        assert page("-finished") == [ids[2], ids[0], ids[1]]
        assert [row["id"] for row in queries.failures(store, cid).rows] == [ids[2], ids[0], ids[1]]
        assert [row["id"] for row in queries.failures(store, cid, limit=1, offset=1).rows] == [ids[0]]
    finally:
        store.close()
