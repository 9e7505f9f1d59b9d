"""What each side imports: `engine` never Textual; plain CLI verbs neither Textual nor Apprise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from evman.engine.store import open_store
from tests.engine_cli import ROOT, cli

IMPORT_ALL_ENGINE = """
import importlib, json, pkgutil, sys
import evman.engine as engine
names = sorted(m.name for m in pkgutil.walk_packages(engine.__path__, "evman.engine.")
               if not m.name.endswith("supervisor_process"))
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "textual": sorted(m for m in sys.modules if m.split(".")[0] == "textual")}))
"""

RUN_VERBS = """
import json, sys
from evman.console.cli import main
codes = []
for argv in json.loads(sys.argv[1]):
    sys.argv = ["evman", *argv]
    try:
        main()
    except SystemExit as exit:
        codes.append(exit.code)
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"textual", "apprise"})
print(json.dumps({"codes": codes, "heavy": heavy}), file=sys.stderr)
"""


def python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_importing_every_engine_module_does_not_import_textual() -> None:
    done = python(IMPORT_ALL_ENGINE)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert {"evman.engine.engine", "evman.engine.store", "evman.engine.running.executors"} <= set(found["modules"])
    assert found["textual"] == []


def test_list_and_other_plain_verbs_import_neither_textual_nor_apprise(tmp_path: Path) -> None:
    db = tmp_path / "evman.db"
    defs = tmp_path / "defs.toml"
    defs.write_text('[[event]]\nname = "a"\nrun = "true"\nschedule = "@daily"\n')
    assert cli("load", str(defs), "--db", str(db)).returncode == 0
    verbs = [
        ["list"],
        ["list", "--json"],
        ["history", "--json"],
        ["show", "a"],
        ["alerts"],
        ["next", "a", "-n", "1"],
        ["export"],
    ]
    done = python(RUN_VERBS, json.dumps([[*verb, "--db", str(db)] for verb in verbs] + [["validate", str(defs)]]))
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report == {"codes": [0] * (len(verbs) + 1), "heavy": []}, done.stderr


def test_importtime_of_evman_list_shows_no_textual(tmp_path: Path) -> None:
    db = tmp_path / "evman.db"
    open_store(db).close()
    done = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "import sys; from evman.console.cli import main; sys.argv = ['evman', 'list', "
            f"'--db', {str(db)!r}]; main()",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert done.returncode == 0, done.stderr[-2000:]
    assert {"click", "sqlite3"} <= imported  # the import-time report did come
    assert not imported & {"textual", "apprise"}
