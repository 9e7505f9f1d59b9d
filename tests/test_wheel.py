"""evman as a user installs it: the wheel built from the sdist (`uv build`), installed into a fresh
virtual environment outside the checkout, run beside a user project that has its own `engine.py`
and `console/` package on PYTHONPATH. Nothing is downloaded: uv builds and installs from its cache,
the dependencies pinned by the lock (`uv export`), installed as they are and then checked."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.outside import ROOT, rows, wait_until

pytestmark = pytest.mark.timeout(600)  # a build and an install, on a machine others load too

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

USER_ENGINE = '''"""The user's own engine.py: nothing to do with evman's."""

from pathlib import Path


def work() -> None:
    Path(__file__).with_name("worked.txt").write_text("the user's engine.work ran")
'''
USER_CONSOLE = '''"""The user's own console package."""

NAME = "the user's console"
'''
DEFINITIONS = """
[[event]]
name = "user-work"
call = "engine:work"
"""


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    project: Path
    """The user's folder: engine.py, console/, the definitions; PYTHONPATH and the working directory."""

    def evman(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.venv / "bin" / "evman"), *args],
            cwd=self.project,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def env(self) -> dict[str, str]:
        """A user's shell: the venv's bin on PATH, their folder on PYTHONPATH, nothing of the checkout."""
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "EVMAN_DB")}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = str(self.project)
        return env


def uv_command() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    assert found, "this test builds and installs with uv (https://docs.astral.sh/uv/); put it on PATH"
    return found


def uv(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [uv_command(), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"},
    )
    assert done.returncode == 0, f"uv {' '.join(map(str, args))}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("wheel")
    uv("build", "--offline", "--out-dir", tmp / "dist", ROOT, cwd=tmp)  # the sdist, then the wheel from it
    (wheel,) = (tmp / "dist").glob("evman-*.whl")
    pins = tmp / "pins.txt"
    uv("export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--no-annotate", "-o", pins, cwd=ROOT)
    venv = tmp / "venv"
    uv("venv", "--offline", "--python", sys.executable, venv, cwd=tmp)
    python = venv / "bin" / "python"
    uv("pip", "install", "--offline", "--no-deps", "--python", python, "-r", pins, wheel, cwd=tmp)
    uv("pip", "check", "--python", python, cwd=tmp)  # the wheel's requirements, all met by the pins
    project = tmp / "project"
    (project / "console").mkdir(parents=True)
    (project / "engine.py").write_text(USER_ENGINE)
    (project / "console" / "__init__.py").write_text(USER_CONSOLE)
    (project / "defs.toml").write_text(DEFINITIONS)
    return Installed(wheel, venv, project)


def stop(engine: subprocess.Popen[str]) -> str:
    """SIGTERM the engine this test started (SIGKILL its group if it does not stop); its log."""
    engine.send_signal(signal.SIGTERM)
    try:
        return engine.communicate(timeout=60)[0]
    except subprocess.TimeoutExpired:
        os.killpg(engine.pid, signal.SIGKILL)
        return engine.communicate()[0] + "\n(killed: it did not stop on SIGTERM)"


def test_the_wheel_is_one_evman_package_with_the_metadata_a_user_expects(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(f"evman-{VERSION}.dist-info/METADATA").decode()
    assert {name.split("/")[0] for name in names} == {"evman", f"evman-{VERSION}.dist-info"}
    assert {"evman/engine/engine.py", "evman/console/cli/main.py", "evman/console/app/evman.tcss"} <= set(names)
    assert f"evman-{VERSION}.dist-info/licenses/LICENSE" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "bench/"))]
    assert "License-Expression: MIT" in metadata
    assert "Classifier: Operating System :: POSIX :: Linux" in metadata
    assert "Project-URL: Homepage, https://github.com/evman-dev/evman" in metadata
    assert f"Version: {VERSION}" in metadata


def test_the_installed_evman_runs_beside_a_users_engine_py_and_console_package(installed: Installed) -> None:
    where = subprocess.run(
        [
            str(installed.venv / "bin" / "python"),
            "-c",
            "import evman, engine, console; print(evman.__file__, engine.__file__, console.__file__)",
        ],
        cwd=installed.project,
        env=installed.env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert Path(where[0]).is_relative_to(installed.venv)  # evman from the wheel, not the checkout
    assert where[1:] == [str(installed.project / "engine.py"), str(installed.project / "console" / "__init__.py")]
    assert installed.evman("--version").stdout.strip() == f"evman, version {VERSION}"
    assert "Usage: evman" in installed.evman("--help").stdout
    installed.evman("load", "defs.toml")
    assert re.search(r"^user-work\s", installed.evman("list").stdout, flags=re.M)
    engine = subprocess.Popen(
        [str(installed.venv / "bin" / "evman"), "--no-ui"],
        cwd=installed.project,
        env=installed.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        db = installed.project / "evman.db"  # read as another program would, between the user's commands
        wait_until(
            lambda: rows(db, "SELECT pid FROM engine WHERE pid = ?", (engine.pid,)), timeout=60, what="the engine"
        )
        assert "ok (run 1)" in installed.evman("trigger", "user-work", "--wait", "60").stdout
        wait_until(
            lambda: rows(db, "SELECT id FROM runs WHERE ended_at IS NOT NULL"), timeout=60, what="the run to end"
        )
        runs = json.loads(installed.evman("history", "--json").stdout)
    finally:
        log = stop(engine)
    assert [(r["event"], r["state"]) for r in runs] == [("user-work", "succeeded")], log
    assert (installed.project / "worked.txt").read_text() == "the user's engine.work ran"
    assert engine.returncode == 0, log


def test_the_version_is_written_once_in_pyproject() -> None:
    """The code reads it from the installed metadata (evman.__version__); no source repeats it."""
    sources = [p for folder in ("engine", "console", "evman") for p in (ROOT / folder).rglob("*.py")]
    repeated = [str(p.relative_to(ROOT)) for p in sources if f'"{VERSION}"' in p.read_text()]
    assert repeated == []
    import evman

    assert evman.__version__ == VERSION
