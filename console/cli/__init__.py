"""The `evman` command: the click tree (`main`), the headless engine, `import-crontab`, `engines`.
The `evman` script starts in `evman.console.start:main`, which hands it every command line
but the plain console's."""

from __future__ import annotations

from evman.console.cli.main import main

__all__ = ["main"]
