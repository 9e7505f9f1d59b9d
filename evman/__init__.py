"""evman: an event manager for batch work. The engine is `evman.engine`, the console and the
`evman` command are `evman.console`; this package only names them and carries the version."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("evman")
except PackageNotFoundError:  # a checkout that was never installed
    __version__ = "0+unknown"
