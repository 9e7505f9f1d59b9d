"""The one error the store raises: a database problem said in words a user can act on."""

from __future__ import annotations


class StoreError(RuntimeError):
    """A database problem said in words a user can act on."""


class Fenced(StoreError):
    """A guarded write changed fewer rows than it must: someone else owns what it changes."""
