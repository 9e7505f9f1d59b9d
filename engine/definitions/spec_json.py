"""EventSpec to JSON and back, as the store keeps it."""

from __future__ import annotations

import enum
import functools
import json
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, fields, is_dataclass
from typing import Any

from evman.engine.model import EventSpec


def spec_to_json(spec: EventSpec) -> str:
    """`spec` as JSON (field names as keys, enums as their values); spec_from_json undoes it."""
    return json.dumps(_plain(spec), ensure_ascii=False)


def spec_from_json(text: str) -> EventSpec:
    """The EventSpec spec_to_json wrote. Missing keys take the model's defaults; unknown keys
    (from another evman version) are ignored."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(
            f"Stored event spec is {type(data).__name__}, not a JSON object; reload the definitions file to rewrite it."
        )
    spec: EventSpec = _from_plain(EventSpec, data)
    return spec


def _plain(value: object) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


@functools.cache
def _field_types(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _from_plain(kind: Any, value: Any) -> Any:
    """`value` (from JSON) as an instance of the annotated type `kind`."""
    return _converter(kind)(value)


@functools.cache
def _converter(kind: Any) -> Callable[[Any], Any]:
    """The function turning JSON for `kind` into a `kind` (None stays None), worked out once
    per type: the engine decodes the spec of every event it runs, and reading the type hints
    again for every field of every spec cost more than a no-op run."""
    origin = typing.get_origin(kind)
    if origin is types.UnionType or origin is typing.Union:
        (inner,) = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return _converter(inner)
    if origin is tuple:
        item = _converter(typing.get_args(kind)[0])
        return lambda value: None if value is None else tuple(item(v) for v in value)
    if origin in (Mapping, dict):
        item = _converter(typing.get_args(kind)[1])
        return lambda value: None if value is None else {key: item(v) for key, v in value.items()}
    if isinstance(kind, type) and is_dataclass(kind):
        hints = _field_types(kind)
        plan = {f.name: _converter(hints[f.name]) for f in fields(kind)}
        make = _maker(kind)
        return lambda value: (
            None if value is None else make({name: plan[name](item) for name, item in value.items() if name in plan})
        )
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return lambda value: None if value is None else kind(value)
    if kind is float:
        return lambda value: None if value is None else float(value)
    return _same


def _same(value: Any) -> Any:
    return value


def _maker(kind: type[Any]) -> Callable[[dict[str, Any]], Any]:
    """kind(**values) for a dataclass whose __init__ only sets its fields: its defaults, then
    `values`, straight into the new instance's __dict__, in the fields' order. A frozen
    dataclass's __init__ sets each field through object.__setattr__: EventSpec's 38 took ~12 µs,
    three quarters of decoding a spec (a tenth of a due tick, bench W3). A default made by a
    factory is made anew for each instance, as __init__ would; a missing required field goes
    through __init__, which says so."""
    found = fields(kind)
    if hasattr(kind, "__slots__") or hasattr(kind, "__post_init__") or not all(f.init for f in found):
        return lambda values: kind(**values)
    template = {f.name: f.default for f in found}  # a required field's MISSING is always replaced
    factories = [(f.name, _default_maker(f.default_factory)) for f in found if f.default_factory is not MISSING]
    required = [f.name for f in found if f.default is MISSING and f.default_factory is MISSING]
    new = object.__new__

    def make(values: dict[str, Any]) -> Any:
        if required and not all(name in values for name in required):
            return kind(**values)
        state = {**template, **values}
        for name, factory in factories:
            if name not in values:
                state[name] = factory()
        made = new(kind)
        made.__dict__.update(state)
        return made

    return make


def _default_maker(factory: Callable[[], Any]) -> Callable[[], Any]:
    """A field's default factory; a dataclass's (`window = Window()`) made as _maker makes it."""
    if isinstance(factory, type) and is_dataclass(factory):
        make = _maker(factory)
        return lambda: make({})
    return factory
