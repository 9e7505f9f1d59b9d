"""PgStore: an evman PostgreSQL database, the store's parts plus the fleet's statements. Its own
module, imported when a PostgreSQL target is opened (or PgStore is named): a SQLite store never
loads the PostgreSQL parts (the fleet's statements, the connection, the libpq string reader)."""

from __future__ import annotations

from evman.engine.store.fleet import FleetPart
from evman.engine.store.postgres import PgConnection
from evman.engine.store.stores import Store


class PgStore(FleetPart, Store, PgConnection):
    """An evman PostgreSQL database: several engines, each with a lease (see fleet.py)."""
