"""Output helpers shared by the typer commands (``textclf`` and ``textclf release``)."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import typer

from textclf.errors import TextclfError


def fail(err: TextclfError) -> NoReturn:
    """Print ``err`` in red on stderr and exit 2 (bad input or state, never a crash)."""
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def print_json(payload: Any) -> None:
    """``payload`` as indented JSON on stdout (non-JSON values as strings)."""
    typer.echo(json.dumps(payload, indent=2, default=str))
