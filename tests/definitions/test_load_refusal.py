"""A refused `evman load` or `import-crontab` leaves nothing behind, and an empty file says so."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from tests.outside import ROOT, evman_argv, rows

BAD = '[[event]]\nname = "a"\nrun = "true"\nschedule = "61 * * * *"\n'
GOOD = '[[event]]\nname = "a"\nrun = "true"\nschedule = "*/5 * * * *"\n'


def evman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(evman_argv(*args), capture_output=True, text=True, timeout=60, cwd=ROOT)


def folder(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


def test_a_refused_load_creates_no_database(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD)
    db = tmp_path / "new.db"
    done = evman("load", str(bad), "--db", str(db))
    assert done.returncode == 2 and "key 'schedule'" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]  # no new.db, -wal, -shm
    listed = evman("list", "--db", str(db))
    assert listed.returncode == 1 and f"{db} does not exist" in listed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_a_refused_load_into_an_existing_database_changes_no_byte(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(GOOD)
    bad.write_text(BAD.replace('"a"', '"b"'))
    db = tmp_path / "evman.db"
    assert evman("load", str(good), "--db", str(db)).returncode == 0
    before = folder(tmp_path)
    assert not any(name.endswith(("-wal", "-shm")) for name in before)
    done = evman("load", str(bad), "--db", str(db))
    assert done.returncode == 2 and "event 'b': key 'schedule'" in done.stderr
    assert folder(tmp_path) == before
    assert [r["name"] for r in rows(db, "SELECT name FROM events")] == ["a"]


def test_a_refused_crontab_import_creates_no_database(tmp_path: Path) -> None:
    bad_zone = tmp_path / "system-tab"
    bad_zone.write_text("CRON_TZ=Mars/Olympus\n0 1 * * * root /bin/true\n")
    db = tmp_path / "new.db"
    done = evman("import-crontab", str(bad_zone), "--system", "--db", str(db))
    assert done.returncode == 2 and "unknown time zone 'Mars/Olympus'" in done.stderr
    assert not db.exists() and not Path(f"{db}-wal").exists() and not Path(f"{db}-shm").exists()


def test_a_crontab_user_this_host_lacks_imports_with_a_warning(tmp_path: Path) -> None:
    """The engine that runs it checks the user (it may run on another host)."""
    tab = tmp_path / "system-tab"
    tab.write_text("0 1 * * * no-such-user-here /bin/true\n")
    done = evman("import-crontab", str(tab), "--system", "--db", str(tmp_path / "new.db"))
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(f"{tab}: event 'true-")
    assert "key 'user': warning: no user 'no-such-user-here' on this machine" in done.stderr


def test_a_load_that_passes_still_creates_the_database(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    db = tmp_path / "sub.db"
    done = evman("load", str(good), "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert [r["name"] for r in rows(db, "SELECT name FROM events")] == ["a"]


def test_an_empty_file_says_it_defines_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("# nothing yet\n")
    for verb in (["validate", str(empty)], ["load", str(empty), "--db", str(tmp_path / "e.db")]):
        done = evman(*verb)
        assert done.returncode == 0, done.stderr
        assert f"{empty}: warning: it defines no events" in done.stderr, done.stderr
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    quiet = evman("validate", str(good))
    assert quiet.returncode == 0 and "warning" not in quiet.stderr
