"""The tick's stages, one module each, in the order a tick runs them (see HACKING.md):
requests, materialise, reap, followups, start, deadlines, flush (and spawn); recover runs
once, when an engine starts."""
