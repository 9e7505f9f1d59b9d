"""Build the site from feeds/today.json into site/builds/RUN/, then make it the develop site."""

from __future__ import annotations

import html
import json
import os
import shutil
import sys
from pathlib import Path


def main() -> int:
    feed = json.loads(Path("feeds/today.json").read_text(encoding="utf-8"))
    build = Path("site/builds") / os.environ.get("EVMAN_RUN_ID", "manual")
    build.mkdir(parents=True, exist_ok=True)
    rows = "\n".join(
        f'  <li><a href="{html.escape(i["url"])}">{html.escape(i["title"])}</a> ({html.escape(i["source"])})</li>'
        for i in feed["items"]
    )
    page = f"<!doctype html>\n<title>Today</title>\n<h1>Today</h1>\n<ul>\n{rows}\n</ul>\n"
    (build / "index.html").write_text(page, encoding="utf-8")
    develop = Path("site/develop")
    develop.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(build / "index.html", develop / "index.html.tmp")
    (develop / "index.html.tmp").replace(develop / "index.html")
    print(f"built {build} with {len(feed['items'])} stories; it is the develop site now")
    return 0


if __name__ == "__main__":
    sys.exit(main())
