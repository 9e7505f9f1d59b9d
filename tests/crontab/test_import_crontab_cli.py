"""`evman import-crontab` as a process: how it tells the format, what it warns about, what it refuses."""

from __future__ import annotations

import subprocess
import tomllib

from tests.outside import ROOT, evman_argv

DATA = ROOT / "tests" / "data"


def evman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(evman_argv(*args), capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_a_system_crontab_in_a_crontabs_folder_is_imported_as_one_with_a_warning() -> None:
    source = DATA / "crontabs" / "nextcloud"
    done = evman("import-crontab", str(source), "--print")
    assert done.returncode == 0, done.stderr
    events = tomllib.loads(done.stdout)["event"]
    assert [(e["user"], e["shell"].split()[0]) for e in events] == [("www-data", "php")] * 2
    assert done.stderr.startswith(
        f"{source}: warning: its folder (crontabs) holds user crontabs, but line 2 "
        "names user 'www-data' after the schedule"
    )
    forced = evman("import-crontab", str(source), "--print", "--user")
    assert forced.returncode == 0 and forced.stderr == ""
    assert [e["shell"].split()[0] for e in tomllib.loads(forced.stdout)["event"]] == ["www-data"] * 2


def test_a_uniform_unknown_user_column_in_a_crontabs_folder_is_refused() -> None:
    done = evman("import-crontab", str(DATA / "crontabs" / "amavisd-new"), "--print")
    assert done.returncode == 2 and done.stdout == ""
    assert "every entry has 'amavis' after its schedule" in done.stderr
    assert "say --system if 'amavis' is the user, --user if it is the command" in done.stderr
