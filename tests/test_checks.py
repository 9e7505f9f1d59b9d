"""The checks run by themselves: .ci/run and the pre-commit hooks run the same commands, in the
same order, and pre-commit accepts its configuration."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKS = ["uv run ruff check .", "uv run ruff format --check .", "uv run mypy"]


def ci_commands() -> list[str]:
    """The commands of .ci/run that run a tool through uv (its installs of uv and Debian packages aside)."""
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    return [line for line in lines if "uv run " in line and not line.startswith("#")]


def hook_commands() -> list[str]:
    """Each hook's entry; a `bash -c '...'` entry (for an environment variable, a $(...)) unwrapped."""
    entries = re.findall(r"^\s+entry: (.+)$", (ROOT / ".pre-commit-config.yaml").read_text(), flags=re.M)
    return [re.sub(r"^bash -c '(.*)'$", r"\1", entry) for entry in entries]


def test_ci_runs_lint_format_and_types_before_the_site_and_the_tests() -> None:
    commands = ci_commands()
    assert commands[:3] == CHECKS and commands[-1] == "uv run pytest"
    assert any("uv run mkdocs build --strict" in c for c in commands[3:-1])


def test_the_pre_commit_hooks_run_what_ci_runs() -> None:
    assert hook_commands() == ci_commands()
    text = (ROOT / ".pre-commit-config.yaml").read_text()
    assert "repo: local" in text and "language: system" in text  # nothing to download at commit time
    assert re.search(r"entry: uv run pytest\n(?:\s+\w+:.*\n)*?\s+stages: \[pre-push\]", text)


def test_pre_commit_accepts_the_configuration() -> None:
    pre_commit = Path(sys.executable).parent / "pre-commit"
    done = subprocess.run(
        [str(pre_commit), "validate-config", ".pre-commit-config.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
