"""How ``atlas --help`` and ``atlas COMMAND --help`` read: the typer app's class.

- A command's help is its docstring up to a form feed (``\\f``, typer's cut): what a user
  reads, in plain words, no markup; what follows it is for maintainers and never shown.
- Each paragraph of it is one line of text, wrapped by the terminal: typer's rich help kept
  the docstring's own line breaks (in the commands' list, and in every paragraph but the
  first). Markdown help (``rich_markup_mode="markdown"``) would wrap it too, but puts an
  option's ``[default: …]`` and ``[required]`` on a line of their own.
- A flag (``--json``, ``--yes``) shows no type: typer 0.29's rich help draws every option's,
  a flag's as ``<bool>`` as if it took a value (``--json=true`` is refused); its plain help
  draws none.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption


def untype_flags(params: Iterable[Any]) -> None:
    """Each boolean flag of ``params`` drawn without a type: an empty metavar, which the rich
    help draws in the type's place (a flag's metavar is used nowhere else)."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_bool_flag:
            param.metavar = ""


def user_help(text: str | None) -> str | None:
    """``text`` (a docstring) up to its form feed, each paragraph joined into one line."""
    if text is None:
        return None
    shown = inspect.cleandoc(text).partition("\f")[0]
    return "\n\n".join(" ".join(p.split()) for p in re.split(r"\n\s*\n", shown) if p.strip())


class FlagsCommand(TyperCommand):
    """A typer command whose help is :func:`user_help`'s and whose flags, ``--help``
    included, show no ``<bool>``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = user_help(self.help)
        untype_flags(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        """click's ``--help`` option (made on first use, then kept), untyped."""
        option = super().get_help_option(ctx)
        untype_flags([option])
        return option


class FlagsGroup(TyperGroup):
    """The typer group (``atlas`` itself) whose ``--help`` shows no ``<bool>``."""

    def get_help_option(self, ctx: Any) -> Any:
        """click's ``--help`` option (made on first use, then kept), untyped."""
        option = super().get_help_option(ctx)
        untype_flags([option])
        return option


class AtlasTyper(typer.Typer):
    """``typer.Typer`` whose group is a :class:`FlagsGroup` and each command a
    :class:`FlagsCommand` unless it names its own class."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", FlagsGroup)
        super().__init__(**kwargs)

    def command(self, name: str | None = None, *, cls: type[TyperCommand] | None = None,
                **kwargs: Any) -> Callable[[Any], Any]:
        return super().command(name, cls=cls or FlagsCommand, **kwargs)
