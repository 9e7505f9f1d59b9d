"""Python's cyclic garbage collector, held off while the console starts: from the moment
`evman` knows it opens the console until the first frame is on screen. Starting (Textual's
imports and ours, the app, the first rows) made some 130 collections, one of them a full one
that walks every object imported so far: ~50 ms of CPU of ~380 to the first frame (measured
with gc.callbacks on a busy machine), to free nothing worth it (what a start makes, it keeps);
held, ~20 young ones are left (the command line's, before it knows), ~5 ms. Tests and other programs that make the app never
hold it, so releasing is then nothing."""

from __future__ import annotations

import gc

_held = False


def hold() -> None:
    global _held
    if gc.isenabled():
        gc.disable()
        _held = True


def release() -> None:
    """The first frame is on screen: collect as usual from now on."""
    global _held
    if _held:
        _held = False
        gc.enable()
