"""Time as definitions write it: durations, schedules, windows, retry backoff, how times read."""
