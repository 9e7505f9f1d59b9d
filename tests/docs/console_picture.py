"""The console picture of the README and the site (docs/assets/console.svg): the real console,
rendered by Textual on a copy of the repository's sample.db at a fixed time.

    uv run python -m tests.docs.console_picture       # rewrites docs/assets/console.svg

tests/docs/test_console_picture.py fails when the file no longer matches what the console draws.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PICTURE = REPO / "docs" / "assets" / "console.svg"
SIZE = (132, 17)
AT = datetime(2026, 3, 2, 23, 45, tzinfo=UTC)
"""The end of sample.db's simulated day: its last runs a few minutes ago, a missed launch open."""


async def _render(db: Path) -> str:
    from evman.console.app.evman_app import make_app
    from evman.engine.clock import FakeClock

    app = make_app(db, clock=FakeClock(AT), start_engine=False, operator="night-shift", zone="Europe/London")
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.monotonic() + 30
        # loaded, no engine said, and the slack column read (its foresight imports take ~1 s on
        # a busy machine: without waiting for it the picture lost the column there)
        while not (getattr(app.screen, "loaded", False) and app.mode == "none" and getattr(app.screen, "slack", None)):
            if time.monotonic() > deadline:
                raise AssertionError("the console did not finish loading sample.db")
            await pilot.pause(0.05)
        await pilot.pause(0.3)
        return app.export_screenshot(title="evman --db sample.db")


def render() -> str:
    """The SVG of the console on a copy of sample.db (the console reads; the copy keeps the
    repository's file as it is)."""
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "sample.db"
        shutil.copy2(REPO / "sample.db", db)
        return asyncio.run(_render(db))


def main() -> int:
    PICTURE.parent.mkdir(parents=True, exist_ok=True)
    PICTURE.write_text(render(), encoding="utf-8")
    print(f"wrote {PICTURE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
