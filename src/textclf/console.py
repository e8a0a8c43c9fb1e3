"""Output helpers shared by the typer commands (``textclf`` and ``textclf release``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from textclf.errors import TextclfError


def fail(err: TextclfError) -> NoReturn:
    """Print ``err`` in red on stderr and exit 2 (bad input or state, never a crash)."""
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def print_json(payload: Any) -> None:
    """``payload`` as indented JSON on stdout (non-JSON values as strings)."""
    typer.echo(json.dumps(payload, indent=2, default=str))


def _reporting(invoke: Callable[[Any], Any], ctx: Any) -> Any:
    """The one CLI error handler: a :class:`TextclfError` raised by a command is printed as
    ``error: ...`` (red, on stderr) and exits 2, never a traceback (:func:`fail`)."""
    try:
        return invoke(ctx)
    except TextclfError as err:
        fail(err)


class ErrorReportingGroup(TyperGroup):
    """``typer.Typer(cls=ErrorReportingGroup)``: every subcommand, nested groups too."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click.Context
        """Run the subcommand; a TextclfError becomes ``error: ...``, exit 2."""
        return _reporting(super().invoke, ctx)


class ErrorReportingCommand(TyperCommand):
    """``app.command(cls=ErrorReportingCommand)``: a single-command program."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click.Context
        """Run the command; a TextclfError becomes ``error: ...``, exit 2."""
        return _reporting(super().invoke, ctx)
