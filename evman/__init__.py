"""evman: an event manager for batch work. The engine is `evman.engine`, the console and the
`evman` command are `evman.console`; this package only names them and carries the version."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """`evman.__version__`, read from the installed metadata when asked: importlib.metadata
    (email, zipfile, csv...) costs every start of the console ~50 ms otherwise."""
    if name != "__version__":
        raise AttributeError(f"module 'evman' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("evman")
    except PackageNotFoundError:  # a checkout that was never installed
        return "0+unknown"
