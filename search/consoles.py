"""The two rich consoles the command line writes to (``console``: results, on standard
output; ``err``: errors, warnings and progress, on standard error), and :func:`escape`,
which makes text from outside safe to print on them."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape as markup_escape

from search.printable import printable

console = Console()
err = Console(stderr=True)


def escape(text: str) -> str:
    """``text`` for a rich console: what a terminal would act on as escapes
    (:func:`search.printable.printable`: an evaluator's error may hold anything), its
    markup inert."""
    return markup_escape(printable(text))
