"""What-if changes to a projection: an event slowed by a factor ("build=3x") or delayed ("fetch=+30m")."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from evman.engine.foresight.occurrence import Occurrence
from evman.engine.timing.durations import DurationError, parse_duration

FORMS: Final = "EVENT=FACTORx (slowed, e.g. build=3x or build=1.5x) or EVENT=+DURATION (delayed, e.g. fetch=+30m)"
_FACTOR: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*[xX×]")


class WhatIfError(ValueError):
    pass


@dataclass(frozen=True)
class WhatIf:
    event: str
    factor: float = 1.0
    delay_s: float = 0.0


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + f"... ({len(text)} characters)")


def parse_what_if(text: str, events: Collection[str] | None = None) -> WhatIf:
    """One --what-if value; `events`, when given, are the names it may refer to."""
    name, eq, change = text.partition("=")
    name, change = name.strip(), change.strip()
    if not eq or not name or not change:
        raise WhatIfError(f"--what-if {_shown(text)}: expected {FORMS}.")
    if events is not None and name not in events:
        known = ", ".join(sorted(events)[:10]) + (", ..." if len(events) > 10 else "")
        raise WhatIfError(
            f"--what-if {_shown(text)}: no event {name!r} in the plan"
            f"{f' (events: {known})' if known else ''}. Check the name with `evman list`."
        )
    if change.startswith("+"):
        try:
            return WhatIf(name, delay_s=parse_duration(change[1:]))
        except DurationError as exc:
            raise WhatIfError(f"--what-if {_shown(text)}: {exc}") from exc
    match = _FACTOR.fullmatch(change)
    if match is None:
        raise WhatIfError(f"--what-if {_shown(text)}: {change!r} is neither a factor nor a delay; expected {FORMS}.")
    factor = float(match.group(1))
    if factor <= 0 or factor > 1000:
        raise WhatIfError(f"--what-if {_shown(text)}: the factor must be above 0 and at most 1000, e.g. 3x or 0.5x.")
    return WhatIf(name, factor=factor)


def parse_what_ifs(texts: Iterable[str], events: Collection[str] | None = None) -> list[WhatIf]:
    """Every --what-if value; an event may be slowed once and delayed once."""
    seen: set[tuple[str, bool]] = set()
    out: list[WhatIf] = []
    for text in texts:
        change = parse_what_if(text, events)
        key = (change.event, change.factor != 1.0)
        if key in seen:
            what = "slowed" if key[1] else "delayed"
            raise WhatIfError(
                f"--what-if {_shown(text)}: {change.event!r} is {what} twice; give one "
                f"factor and at most one delay per event."
            )
        seen.add(key)
        out.append(change)
    return out


def apply_what_ifs(occurrences: Mapping[str, Occurrence], changes: Iterable[WhatIf]) -> dict[str, Occurrence]:
    """A copy of `occurrences` with each change applied (an event without an occurrence is left out)."""
    out = dict(occurrences)
    for change in changes:
        occ = out.get(change.event)
        if occ is None:
            continue
        out[change.event] = occ._replace(factor=occ.factor * change.factor, delay_s=occ.delay_s + change.delay_s)
    return out
