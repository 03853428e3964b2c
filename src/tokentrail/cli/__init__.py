"""The `tokentrail` command line: one module per command group, registered on one Typer app."""

from __future__ import annotations

from tokentrail.cli import demo, mock_provider, price
from tokentrail.cli.app import app

# The modules above register their commands on `app` when imported.
_COMMAND_MODULES = (demo, mock_provider, price)


def main() -> None:
    app()


__all__ = ["app", "main"]
