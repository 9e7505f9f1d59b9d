"""`python -m evman.console.cli`: the `evman` command."""

from __future__ import annotations

from evman.console.cli.main import main

main()
