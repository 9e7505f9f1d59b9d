"""Every TOML example of docs/guides/calendars.md passes `evman validate` (put together with an event
for the blackouts to name)."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from evman.console.cli.main import main

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "calendars.md"
NAMED = "".join(
    f'\n[[event]]\nname = "{name}"\nrun = "true"\nschedule = "@daily"\n' for name in ("billing-run", "ledger")
)


def blocks() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", GUIDE.read_text(), re.S)


def test_the_guide_examples_validate(tmp_path: Path) -> None:
    found = blocks()
    assert len(found) >= 4
    calendars, event, schedules, blackouts = found[:4]
    event_text = event + "".join(
        f'\n[[event]]\nname = "s{i}"\nrun = "true"\n{line}\n'
        for i, line in enumerate(schedules.splitlines())
        if line.startswith("schedule")
    )
    for text in (calendars + event_text + NAMED, blackouts + NAMED):
        defs = tmp_path / "defs.toml"
        defs.write_text(text)
        result = CliRunner().invoke(main, ["validate", str(defs)])
        assert result.exit_code == 0, result.output
        assert "all valid" in result.output
