"""The `tokentrail` command line."""

from __future__ import annotations

from tokentrail.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
