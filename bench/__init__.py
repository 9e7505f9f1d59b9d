"""evman's benchmark suite: `uv run --group bench python -m bench` (see bench/README.md)."""
