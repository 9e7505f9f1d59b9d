"""The tick's core: its context, the runs it holds, the store as it reads it, what a stage may do to a run."""
