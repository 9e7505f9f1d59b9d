"""Retention: what evman forgets and when (keep.runs, keep.logs, handled requests, resolved
alerts), done by a housekeeper in small batches beside the engine, never by the tick.

The rooms: `rules` (horizons; what is never deleted), `kept` (the runs each event must keep,
found incrementally), `logfiles` (deleting a run's log and its exit records), `housekeeper`
(the passes, their pacing, the thread). Imports the store, definitions, conditions, running."""

from __future__ import annotations

from evman.engine.retention.housekeeper import Housekeeper, PassReport, start_housekeeper
from evman.engine.retention.rules import Horizon, horizons

__all__ = ["Horizon", "Housekeeper", "PassReport", "horizons", "start_housekeeper"]
