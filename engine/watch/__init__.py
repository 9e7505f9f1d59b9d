"""Who watches the watcher: what an engine process tells the world about its own health.

The rooms: `report` (what the engine says after each tick), `health` (healthy, failing or
fenced, from those reports), `heartbeat` (a dead-man's-switch URL pinged from its own thread),
`systemd` (the notify protocol: READY, WATCHDOG, STATUS, STOPPING), `metrics` (Prometheus, with
prometheus-client, imported only when asked for), `logformat` (JSON log lines). Imports the
store, the model, paging's defaults reader and definitions' masking; never the engine itself."""
