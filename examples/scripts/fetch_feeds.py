"""Fetch the syndicated feeds: merge every sources/*.json into feeds/today.json.

Offline on purpose: the "feeds" are files shipped with the example. The output is written
to a temporary name and renamed, so a reader never sees half a file."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "feeds/today.json")
    items = []
    for source in sorted(Path("sources").glob("*.json")):
        feed = json.loads(source.read_text(encoding="utf-8"))
        items += [{**item, "source": feed["source"]} for item in feed["items"]]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            {
                "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "run": os.environ.get("EVMAN_RUN_ID"),
                "items": items,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    tmp.replace(out)
    print(f"fetched {len(items)} items from {len(set(i['source'] for i in items))} feeds into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
