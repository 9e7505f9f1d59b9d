"""Paging the driver: alert rules, notice text, rounds of sending, the notifier thread, Apprise."""
