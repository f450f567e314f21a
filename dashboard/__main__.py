"""``python -m dashboard [--storage URL] [--host 127.0.0.1] [--port 8787] [--poll 2] [--allow-host NAME]``:
the same as ``atlas dashboard`` (both call :func:`dashboard.cli.serve`), for when the
``atlas`` command is not at hand."""

from __future__ import annotations

import argparse
import sys

from dashboard.cli import serve
from entropy_atlas.errors import AtlasError


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve until interrupted; 2 (and ``error:`` lines) on a
    problem the user can fix, such as a storage that cannot be read or a port taken."""
    parser = argparse.ArgumentParser(prog="python -m dashboard",
                                     description="A read-only web dashboard of an Entropy Atlas archive.")
    parser.add_argument("--storage", default=None,
                        help="SQLAlchemy URL (default: $ATLAS_STORAGE or sqlite:///atlas.db)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8787, help="port (default: 8787; 0: any free port)")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between a page's checks of a running campaign")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="a Host name the dashboard answers besides this machine's (DNS-rebinding guard)")
    args = parser.parse_args(argv)
    try:
        serve(args.storage, host=args.host, port=args.port, poll_s=args.poll, allow_hosts=args.allow_host)
    except AtlasError as exc:
        for line in exc.lines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
