"""The console picture of the README and the site is what the console draws today."""

from __future__ import annotations

import console_picture


def test_the_console_picture_is_current() -> None:
    drawn = console_picture.render()
    kept = console_picture.PICTURE.read_text(encoding="utf-8")
    assert "announce-launch" in drawn and "promote-to-production" in drawn, "the sample's events are on it"
    assert drawn == kept, (
        f"{console_picture.PICTURE} is not what the console draws now: run "
        "`uv run python -m tests.docs.console_picture` and look at the new picture before committing it"
    )
