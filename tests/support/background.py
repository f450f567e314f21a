"""A campaign run in a background thread, for tests that break something while it runs."""

from __future__ import annotations

import threading

from search import api


def run_in_background(spec: dict, url: str, executor: str = "inline") -> tuple[threading.Thread, dict]:
    """``api.run`` in a started thread; its stats (``"stats"``) or its exception (``"error"``)
    land in the returned dict."""
    result: dict = {}

    def run() -> None:
        try:
            result["stats"] = api.run(spec, storage=url, executor=executor)
        except Exception as exc:  # surfaced by the callers' assertions
            result["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    return worker, result
