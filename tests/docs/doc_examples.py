"""The examples of a Markdown page, run as a reader would run them.

A page's fenced blocks, in order:

- a block with a title (```toml title="nightly.toml"```) is a file: it is written into the page's
  own folder (an absolute title under the folder too), and a `.toml` file is validated as a
  definitions file, unless a later command of the page runs `evman validate` on it (then that
  command's output is what the page shows);
- a ```toml``` block without a title is validated too; a fragment of an event table (no table
  header) is validated inside `[[event]] name = "example" run = "true"`;
- a ```console``` block holds commands (`$ ...`, a trailing `\\` continues one) and what they
  print: each runs in bash in the page's folder, in order, with the environment a previous
  `export` or `cd` left; what it prints (standard output and error together) must match what the
  page shows, where `...` stands for any text and runs of whitespace are one space (doctest's
  ELLIPSIS and NORMALIZE_WHITESPACE). A command that shows no output must exit 0. A command
  ending in `&` starts in the background (the test stops it at the end of the page, by its pid).
  While one runs, a command that only reads (evman list/show/history/alerts/plan/engines/next,
  cat, ls, grep) is run again until it prints what the page shows, for up to WAIT_S: the page
  shows what a reader sees once the engine got there;
- a ```text``` block is an illustration (a message's shape), not run;
- `uv run CMD` is what a reader types in a checkout of evman: it runs CMD with the checkout's
  environment (the one running these tests), in a folder holding copies of the checkout's
  examples/, bench/ and sample.db;
- any other block is refused: the page must say how to run it.

A few commands cannot run here (an install from PyPI, systemctl); NOT_RUN lists each with the
reason, and any other command runs.
"""

from __future__ import annotations

import doctest
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WAIT_S = 60.0
COMMAND_TIMEOUT_S = 60.0

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)[ \t]*(?P<lang>[\w+-]*)[ \t]*(?P<attrs>.*)$")
TITLE = re.compile(r'title="([^"]+)"')
UV_RUN = re.compile(r"(^|[;&|(]\s*|\s)uv run (?!pytest)")
CHECKOUT = ("examples", "bench", "sample.db")
READS = re.compile(
    r"^(evman (list|show|history|alerts|plan|engines|next|export)\b|cat |ls\b|grep |sqlite3 \S+ ['\"]SELECT|psql )"
)
NOT_RUN: tuple[tuple[str, str], ...] = (
    (
        r"^(pipx|uv tool|pip|python3 -m pip) install ",
        "installs from PyPI, which tests do not reach (tests/docs runs the installed command)",
    ),
    (r"^(uv tool|pipx) (upgrade|uninstall) ", "changes the reader's own tools"),
    (
        r"^(uv run )?evman( --db \S+)?( --readonly)?$",
        "opens the interactive console: tests/console drive it with the Pilot",
    ),
    (r"^uv run pytest", "the test suite itself"),
    (r"^uv sync", "sets up a checkout: the test suite runs in one"),
    (r"^uv run mkdocs serve", "a server that runs until stopped: tests/docs/conftest.py builds the site"),
    (r"^uv run mkdocs build", "builds this site: tests/docs/conftest.py runs the same build"),
    (
        r"^uv run --group bench python -m bench",
        "the benchmark (minutes): tests/bench runs its workloads at a tiny size",
    ),
    (
        r"^uv run python -m tests\.docs\.console_picture",
        "rewrites the picture: tests/docs/test_console_picture.py checks it",
    ),
    (r"^git (clone|checkout) ", "a repository from the network, or the reader's own checkout"),
    (r"^(sudo )?systemctl ", "needs systemd: the unit's ExecStart runs in tests/docs/test_examples.py"),
    (r"^(sudo )?journalctl ", "needs systemd"),
    (r"^createdb ", "the test's PostgreSQL server made the database"),
    (r'^eval "\$\(_EVMAN_COMPLETE=', "changes the reader's shell: tests/cli/test_completion.py runs the completion"),
    (r"^(echo|cat) .*>> ~/\.(bash|zsh)rc", "changes the reader's shell start-up file"),
)


@dataclass(frozen=True)
class Block:
    lang: str
    title: str | None
    text: str
    line: int


@dataclass(frozen=True)
class Command:
    text: str
    want: str
    line: int


def blocks(text: str) -> Iterator[Block]:
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        start = FENCE.match(lines[i])
        if start is None:
            i += 1
            continue
        indent, fence = start["indent"], start["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        title = TITLE.search(start["attrs"])
        yield Block(start["lang"], title[1] if title else None, "\n".join(body) + "\n", i + 1)
        i = j + 1


def commands(block: Block) -> Iterator[Command]:
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            raise AssertionError(f"line {block.line + 1 + i}: output before any command: {lines[i]!r}")
        first = block.line + 1 + i
        text = lines[i][2:]
        while text.endswith("\\") and i + 1 < len(lines):
            i += 1
            text = text[:-1] + "\n" + lines[i]
        i += 1
        want: list[str] = []
        while i < len(lines) and not lines[i].startswith("$ "):
            want.append(lines[i])
            i += 1
        yield Command(text, "\n".join(want).strip("\n"), first)


def not_run_reason(command: str) -> str | None:
    return next((why for pattern, why in NOT_RUN if re.search(pattern, command.strip())), None)


def matches(want: str, got: str) -> bool:
    checker = doctest.OutputChecker()
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    return checker.check_output(want.strip() + "\n", got.strip() + "\n", flags)


@dataclass
class Page:
    """One page's folder, environment and background processes."""

    path: Path
    folder: Path
    substitutions: dict[str, str] = field(default_factory=dict)
    skipped: list[tuple[int, str, str]] = field(default_factory=list)
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)
    last_code: int = 0

    def __post_init__(self) -> None:
        self.state = self.folder / ".page-env"
        self.cwd = self.folder

    def text(self) -> str:
        text = self.path.read_text(encoding="utf-8")
        for old, new in self.substitutions.items():
            text = text.replace(old, new)
        return text

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EVMAN_", "PYTEST", "COV_"))}
        env.update(
            PATH=f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}",
            HOME=str(self.folder),
            TZ="UTC",
            LOGNAME="ana",
            USER="ana",
            LC_ALL="C.UTF-8",
            COLUMNS="200",
        )
        return env

    def run_all(self) -> None:
        if UV_RUN.search(self.text()):
            self.copy_checkout()
        blocks_ = list(blocks(self.text()))
        validated_by_page = set(re.findall(r"\$ (?:uv run )?evman validate (\S+)", self.text()))
        try:
            for block in blocks_:
                self.handle(block, validated_by_page)
        finally:
            self.stop_background()

    def copy_checkout(self) -> None:
        for name in CHECKOUT:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, self.folder / name, ignore=shutil.ignore_patterns("__pycache__", "*.db*"))
            else:
                shutil.copy2(source, self.folder / name)

    def handle(self, block: Block, validated_by_page: set[str]) -> None:
        where = f"{self.path.name}:{block.line}"
        if block.title is not None:
            target = self.folder / block.title.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
            if block.lang == "toml" and block.title not in validated_by_page:
                validate(target, where)
        elif block.lang == "toml":
            text = block.text if re.search(r"^\s*\[", block.text, re.M) else EVENT_WRAPPER + block.text
            target = self.folder / f"untitled-{block.line}.toml"
            target.write_text(text, encoding="utf-8")
            validate(target, where)
        elif block.lang == "console":
            for command in commands(block):
                self.run(command)
        elif block.lang != "text":
            raise AssertionError(
                f"{where}: a ```{block.lang or '(no language)'}``` block the tests cannot run: give it a "
                f'title="FILE" (a file the page uses), make it a ```console``` block, or ```text``` for an illustration'
            )

    def run(self, command: Command) -> None:
        where = f"{self.path.name}:{command.line}"
        reason = not_run_reason(command.text)
        if reason is not None:
            self.skipped.append((command.line, command.text, reason))
            return
        text = UV_RUN.sub(r"\1", command.text.strip())
        if text.endswith("&") and not text.endswith("&&"):
            self.start_background(text[:-1].strip())
            return
        deadline = time.monotonic() + (WAIT_S if self.background and READS.match(text) and command.want else 0)
        pause = 0.2
        while True:
            code, got = self.shell(text)
            if command.want and matches(command.want, got):
                break
            if not command.want and code == 0:
                break
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{where}: $ {text}\n--- the page shows:\n{command.want or '(nothing, and exit status 0)'}\n"
                    f"--- it printed (exit status {code}):\n{got}"
                )
            time.sleep(pause)
            pause = min(pause * 1.5, 1.0)  # each look is a process: leave the engine the CPU
        self.last_code = code

    def script(self, text: str) -> str:
        return (
            f"[ -f {shlex.quote(str(self.state))} ] && . {shlex.quote(str(self.state))} 2>/dev/null\n"
            f"cd {shlex.quote(str(self.cwd))}\n"
            f"(exit {self.last_code})\n"
            f"{text}\n"
        )

    def shell(self, text: str) -> tuple[int, str]:
        wrapped = (
            self.script(text) + f"__rc=$?\nexport -p > {shlex.quote(str(self.state))}\n"
            f"pwd > {shlex.quote(str(self.state))}.cwd\nexit $__rc\n"
        )
        done = subprocess.run(
            ["bash", "-c", wrapped],
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        cwd_file = Path(f"{self.state}.cwd")
        if cwd_file.exists():
            self.cwd = Path(cwd_file.read_text().strip())
        return done.returncode, done.stdout.decode("utf-8", "replace")

    def start_background(self, text: str) -> None:
        proc = subprocess.Popen(
            ["bash", "-c", self.script(f"exec {text}" if "|" not in text and ";" not in text else text)],
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.background.append(proc)

    def stop_background(self) -> None:
        for proc in self.background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.background:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self.background.clear()


EVENT_WRAPPER = '[[event]]\nname = "example"\nrun = "true"\n'


def validate(path: Path, where: str) -> None:
    from evman.engine.definitions import DefinitionsError, load_definitions

    try:
        load_definitions(path)
    except DefinitionsError as exc:
        raise AssertionError(f"{where}: the definitions in this block do not validate:\n{exc}") from None


def pages() -> list[Path]:
    """Every page whose examples run: the README and the site's Markdown."""
    found = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    return [p for p in found if "_hooks" not in p.parts]
