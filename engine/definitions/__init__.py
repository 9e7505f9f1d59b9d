"""Definitions files: TOML text to validated Definitions, and back to TOML and JSON.

The rooms: `reader` (the file and the document), one module per section (`defaults`,
`routes`, `event` with `action`, `timing`, `links`, `outputs`), `table` (typed getters),
`export` (TOML out), `masking` (secrets in URLs), `spec_json` (the store's JSON).
"""

from __future__ import annotations

from evman.engine.definitions.action import ACTION_KEYS, CALL_PATTERN, HTTP_KEYS, HTTP_METHODS
from evman.engine.definitions.defaults import DEFAULTS_KEYS
from evman.engine.definitions.event import EVENT_KEYS, NAME_MAX_LENGTH, NAME_PATTERN
from evman.engine.definitions.export import duration_text, export_toml, route_to_table, spec_to_table
from evman.engine.definitions.links import ON_FAILURE_KEYS
from evman.engine.definitions.masking import MASK, is_apprise_url, mask_password, mask_url
from evman.engine.definitions.outputs import OUTPUT_KEYS
from evman.engine.definitions.problems import DefinitionsError
from evman.engine.definitions.reader import TOP_KEYS, load_definitions, parse_definitions, validate_event_table
from evman.engine.definitions.routes import QUIET_KEYS, ROUTE_KEYS
from evman.engine.definitions.spec_json import spec_from_json, spec_to_json
from evman.engine.definitions.timing import RUNTIME_KEYS, WINDOW_KEYS
from evman.engine.definitions.zones import machine_timezone

__all__ = [
    "ACTION_KEYS",
    "CALL_PATTERN",
    "DEFAULTS_KEYS",
    "EVENT_KEYS",
    "HTTP_KEYS",
    "HTTP_METHODS",
    "MASK",
    "NAME_MAX_LENGTH",
    "NAME_PATTERN",
    "ON_FAILURE_KEYS",
    "OUTPUT_KEYS",
    "QUIET_KEYS",
    "ROUTE_KEYS",
    "RUNTIME_KEYS",
    "TOP_KEYS",
    "WINDOW_KEYS",
    "DefinitionsError",
    "duration_text",
    "export_toml",
    "is_apprise_url",
    "load_definitions",
    "machine_timezone",
    "mask_password",
    "mask_url",
    "parse_definitions",
    "route_to_table",
    "spec_from_json",
    "spec_to_json",
    "spec_to_table",
    "validate_event_table",
]
