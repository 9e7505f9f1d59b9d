"""The one error the store raises: a database problem said in words a user can act on."""

from __future__ import annotations


class StoreError(RuntimeError):
    """A database problem said in words a user can act on."""


class Fenced(StoreError):
    """A guarded write changed fewer rows than it must: someone else owns what it changes."""


class Unreachable(StoreError):
    """The database could not be reached: the connection was lost, or the server is restarting
    or down. Expected now and then; the next step reconnects."""
