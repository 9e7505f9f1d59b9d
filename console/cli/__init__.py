"""The `evman` command: the click tree (`main`), the headless engine, `import-crontab`, `engines`.
The entry point is `evman.console.cli:main`."""

from __future__ import annotations

from evman.console.cli.main import main

__all__ = ["main"]
