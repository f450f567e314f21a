"""``python -m search.dashboard [--storage URL] [--host 127.0.0.1] [--port 8787]``: the same as
``atlas dashboard``, for when the ``atlas`` command is not at hand."""

from __future__ import annotations

import argparse
import os
import sys

from archive.store import StorageError
from search.dashboard.cli import DashboardError, dashboard

DEFAULT_STORAGE = "sqlite:///atlas.db"


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve until interrupted; 2 on a storage or address problem."""
    parser = argparse.ArgumentParser(prog="python -m search.dashboard",
                                     description="A read-only web dashboard of an Entropy Atlas archive.")
    parser.add_argument("--storage", default=None,
                        help="SQLAlchemy URL (default: $ATLAS_STORAGE or sqlite:///atlas.db)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8787, help="port (default: 8787; 0: any free port)")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between a page's checks of a running campaign")
    args = parser.parse_args(argv)
    storage = args.storage or os.environ.get("ATLAS_STORAGE", DEFAULT_STORAGE)
    try:
        dashboard(storage, host=args.host, port=args.port, poll_s=args.poll)
    except (StorageError, DashboardError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
