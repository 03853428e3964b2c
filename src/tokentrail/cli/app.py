"""The root Typer app; each command group lives in its own module and registers here."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="tokentrail: exact LLM cost, usage and limits.")
