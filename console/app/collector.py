"""Python's cyclic garbage collector, held off while the console starts: from the moment
`evman` knows it opens the console until the first frame is on screen. Starting (Textual's
imports and ours, the app, the first rows) made some 130 collections, one of them a full one
that walks every object imported so far: ~50 ms of CPU of ~380 to the first frame (measured
with gc.callbacks on a busy machine), to free nothing worth it (what a start makes, it keeps);
held, ~20 young ones are left (the command line's, before it knows), ~5 ms. Tests and other programs that make the app never
hold it, so releasing is then nothing.

The interpreter's switch interval is shortened from the app's start (`hurry`, once the imports
are done and the first rows read) to the first frame: that frame is written to the terminal by
Textual's writer thread, which waited for the interpreter while the app went on with its next
layout (the widgets' sizes, set by the first one, ask for it), a whole switch interval (5 ms)
most times; with 0.5 ms, about that. Not during the imports: there the first rows' reading
thread would take the interpreter from them ten times as often."""

from __future__ import annotations

import gc
import sys
from typing import Final

STARTING_SWITCH_S: Final = 0.0005
_held = False
_switch_s: float | None = None


def hold() -> None:
    global _held
    if gc.isenabled():
        gc.disable()
        _held = True


def hurry() -> None:
    """The app is about to run: shorten the switch interval until release()."""
    global _switch_s
    if _switch_s is None:
        _switch_s = sys.getswitchinterval()
        sys.setswitchinterval(STARTING_SWITCH_S)


def release() -> None:
    """The first frame is on screen: collect as usual from now on."""
    global _held, _switch_s
    if _held:
        _held = False
        gc.enable()
    if _switch_s is not None:
        sys.setswitchinterval(_switch_s)
        _switch_s = None
