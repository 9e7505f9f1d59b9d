"""The Textual app: the engine worker or attached viewer, live refresh, the watcher thread."""
