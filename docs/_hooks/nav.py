"""MkDocs hook: the navigation follows the pages that exist.

A page listed in mkdocs.yml's nav that does not exist yet (a named slot for work under way) is
left out, and a page under a folder of the nav (guides/, reference/) that the nav does not list
is added at the end of that folder's section, so a new guide shows up without an edit here and
`mkdocs build --strict` never fails on a slot. The guides' index lists every guide the same
way (the `<!-- guides: ... -->` line of guides/index.md).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.nav")

Nav = list[Any]
GUIDES_MARK = re.compile(r"^<!-- guides:.*-->$", re.M)
_guides: list[tuple[str, str]] = []
"""(title, path under guides/) of every guide, in the navigation's order."""


def on_config(config: Any) -> Any:
    docs = Path(config["docs_dir"])
    present = {p.relative_to(docs).as_posix() for p in docs.rglob("*.md") if "_hooks" not in p.parts}
    nav = _keep_present(config["nav"] or [], present)
    listed = set(_pages(nav))
    for page in sorted(present - listed):
        section = _section_for(nav, page.rpartition("/")[0])
        if section is None:
            log.warning("%s is in no section of the nav: add it to mkdocs.yml", page)
            continue
        section.append(page)
    config["nav"] = nav
    _guides[:] = [
        (_title(docs / page), page.removeprefix("guides/"))
        for page in _pages(nav)
        if page.startswith("guides/") and page != "guides/index.md"
    ]
    return config


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if page.file.src_uri != "guides/index.md":
        return markdown
    listing = "\n".join(f"- [{title}]({path})" for title, path in _guides)
    return GUIDES_MARK.sub(lambda _m: listing, markdown)


def _title(path: Path) -> str:
    heading = re.search(r"^# (.+)$", path.read_text(encoding="utf-8"), re.M)
    return heading[1].strip() if heading else path.stem


def _keep_present(nav: Nav, present: set[str]) -> Nav:
    kept: Nav = []
    for item in nav:
        if isinstance(item, str):
            if item in present or "://" in item:
                kept.append(item)
            else:
                log.info("nav: %s is a slot with no page yet; left out", item)
        elif isinstance(item, dict):
            ((title, value),) = item.items()
            if isinstance(value, list):
                kept.append({title: _keep_present(value, present)})
            elif value in present or "://" in str(value):
                kept.append(item)
            else:
                log.info("nav: %s is a slot with no page yet; left out", value)
    return kept


def _pages(nav: Nav) -> list[str]:
    found: list[str] = []
    for item in nav:
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            ((_, value),) = item.items()
            found.extend(_pages(value) if isinstance(value, list) else [str(value)])
    return found


def _section_for(nav: Nav, folder: str) -> Nav | None:
    """The nav list holding the pages of `folder` (None for the top level's own pages)."""
    if not folder:
        return nav
    for item in nav:
        if isinstance(item, dict):
            ((_, value),) = item.items()
            if isinstance(value, list):
                if any(isinstance(p, str) and p.rpartition("/")[0] == folder for p in _pages(value)):
                    return value
    return None
