"""The one base of every error a user can fix.

``archive/``, ``workers/`` and ``search/`` each raise their own subclasses; the command
line catches :class:`AtlasError` alone and prints its message as ``error: …`` lines, exit
code 2. Anything else that escapes is a bug, and keeps its traceback.
"""

from __future__ import annotations


class AtlasError(Exception):
    """An error the user can fix: bad input, an unreachable storage, a refused path.

    ``lines()`` is what the command line prints, one ``error:`` line each; a message is
    kept to one line (newlines in it are folded) so it never needs a traceback to read.
    """

    def lines(self) -> list[str]:
        text = " ".join(str(self).split()) if str(self) else type(self).__name__
        return [text]


class OutputPathError(AtlasError, OSError):
    """A file the user asked for cannot be written (checked before the long work)."""
