"""The README is a front page: short, in a user's words, its links and numbers true."""

from __future__ import annotations

import re
from pathlib import Path

from doc_examples import REPO, pages

README = REPO / "README.md"
BENCH = REPO / "bench" / "README.md"
OUTSIDE = re.compile(r"DESIGN\.md|STYLE\.md|\.\./shared|shared/|issues? (show|#?\d)|BRIEF\.md", re.I)
LINK = re.compile(r"\]\(([^)\s]+)\)")
MEASURED = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s?(x|ms|MB|runs/s|%)(?![\w/])")


def test_the_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines; the details belong on the site (docs/)"


def test_the_readme_has_no_internal_bench_labels() -> None:
    text = README.read_text(encoding="utf-8")
    found = re.findall(r"\bW[1-7]\b|\bNOT MET\b|\bMET\b", text)
    assert not found, f"README.md uses the bench's own labels {found}: say what was measured instead"


def test_nothing_refers_to_a_document_outside_the_repository() -> None:
    for page in pages():
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            assert not OUTSIDE.search(line), f"{page.relative_to(REPO)}:{number} refers outside the repository: {line}"


def test_the_readme_links_resolve() -> None:
    for target in LINK.findall(README.read_text(encoding="utf-8")):
        if "://" in target:
            continue
        path = (REPO / target.split("#")[0]).resolve()
        assert path.is_relative_to(REPO) and path.exists(), (
            f"README.md links to {target}, which is not in the repository"
        )


def measured(text: str) -> set[str]:
    return {number for number, _unit in MEASURED.findall(text)}


def test_numbers_quoted_from_the_bench_are_the_bench_s() -> None:
    """Every measured number the README and the performance summary quote appears in the bench's
    own output (bench/README.md), so a rerun that changes them shows here."""
    bench = BENCH.read_text(encoding="utf-8").replace("×", "x")
    guarantees = (REPO / "docs" / "guarantees.md").read_text(encoding="utf-8")
    summary = guarantees[guarantees.index("## Performance") : guarantees.index("### The latest table")]
    for where, text in (("README.md", README.read_text(encoding="utf-8")), ("docs/guarantees.md", summary)):
        quoted = measured(text)
        assert quoted, f"{where} quotes no numbers from the bench"
        missing = sorted(n for n in quoted if n not in bench)
        assert not missing, f"{where} quotes {missing}, which the bench's last run (bench/README.md) does not say"


def test_the_number_reader_reads_numbers() -> None:
    assert measured("ran at 16,085 runs/s (4.59x APScheduler) in 44.4 ms, 100 % of them, 29.6 MB") == {
        "16,085",
        "4.59",
        "44.4",
        "100",
        "29.6",
    }


def test_the_performance_page_includes_the_bench_table(built_site: Path) -> None:
    page = (built_site / "guarantees" / "index.html").read_text(encoding="utf-8")
    assert "evman bench," in page and "Targets (ratios from this run)" in page
