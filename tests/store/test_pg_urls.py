"""Every way libpq names a database (issue 24): URIs with and without an authority (the usual
way to name a Unix socket is `postgresql:///db?host=/run/sock`), and `key=value` strings; evman's
own options taken out, passwords masked in every form, and a real connection through each."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from evman.engine.store import open_store
from evman.engine.store.pg_store import PgStore
from evman.engine.store.postgres import is_url, masked, split_url
from evman.engine.store.targets import db_target, short_name
from tests.outside import rows
from tests.pgserver import PgServer

psycopg = pytest.importorskip("psycopg")

FORMS = [
    # (what --db says, what libpq gets, evman's options)
    ("postgresql:///drill?host=/run/sock&user=evman", "postgresql:///drill?host=/run/sock&user=evman", {}),
    (
        "postgresql:///drill?host=%2Frun%2Fsock&listen=false",
        "postgresql:///drill?host=%2Frun%2Fsock",
        {"listen": "false"},
    ),
    ("postgres://", "postgres://", {}),
    ("postgresql://evman@/drill?host=/s", "postgresql://evman@/drill?host=/s", {}),
    ("postgresql://a:b@h1:5432,h2:5433/d?target_session_attrs=read-write", None, {}),
    ("host=/run/sock dbname=drill user=evman", "host=/run/sock dbname=drill user=evman", {}),
    (
        "host=/run/sock dbname='my db' listen=false application_name='it\\'s'",
        "host=/run/sock dbname='my db' application_name='it\\'s'",
        {"listen": "false"},
    ),
    ("dbname = drill   port=5433", "dbname = drill   port=5433", {}),
]


@pytest.mark.parametrize(("given", "libpq", "ours"), FORMS)
def test_each_form_reaches_libpq_as_given_less_evmans_options(
    given: str, libpq: str | None, ours: dict[str, str]
) -> None:
    assert is_url(given)
    assert isinstance(db_target(given), str)
    assert split_url(given) == (libpq or given, ours)


@pytest.mark.parametrize("path", ["evman.db", "data/x=1.db", "./postgresql.db", "a = b", ""])
def test_file_paths_stay_paths(path: str) -> None:
    assert not is_url(path)


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("postgresql://evman:s3cret@db1/batch", "postgresql://evman:****@db1/batch"),
        ("postgresql:///batch?host=/s&password=s3cret", "postgresql:///batch?host=/s&password=****"),
        ("postgresql://:s3cret@/batch?host=/s", "postgresql://:****@/batch?host=/s"),
        ("host=/s dbname=batch password=s3cret", "host=/s dbname=batch password=****"),
        ("host=/s password = 'it\\'s s3cret' dbname=batch", "host=/s password = **** dbname=batch"),
        ("postgresql:///batch?host=/s", "postgresql:///batch?host=/s"),
    ],
)
def test_passwords_are_masked_in_every_form(given: str, shown: str) -> None:
    assert masked(given) == shown
    assert "s3cret" not in masked(given)


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("postgresql:///drill?host=/s", "drill"),
        ("postgresql://h/my%20db", "my db"),
        ("host=/s dbname='my db'", "my db"),
        ("host=/s user=evman", "postgres"),
    ],
)
def test_the_short_name_is_the_database(given: str, name: str) -> None:
    assert short_name(given) == name


def forms_of(pg_server: PgServer, pg_dsn: str) -> list[str]:
    name = unquote(urlsplit(pg_dsn).path.lstrip("/"))
    sock = pg_server.socket_dir
    return [
        f"postgresql:///{name}?host={sock}&user=evman",
        f"postgresql:///{name}?host={sock}&user=evman&listen=false",
        f"host={sock} dbname={name} user=evman",
        f"host='{sock}' dbname = '{name}' user=evman listen=false",
    ]


def test_a_store_opens_through_every_form(pg_server: PgServer, pg_dsn: str, tmp_path: Path) -> None:
    open_store(pg_dsn).close()  # creates the tables
    for given in forms_of(pg_server, pg_dsn):
        store = open_store(given)
        assert isinstance(store, PgStore)
        try:
            assert store.url == masked(split_url(given)[0])
            assert store.listen is ("listen=false" not in given)
            store.add_request("hold", "nothing", requested_by=given)
        finally:
            store.close()
    assert len(rows(pg_dsn, "SELECT id FROM requests")) == 4


def test_the_cli_and_an_engine_take_a_url_without_authority(pg_server: PgServer, pg_dsn: str, tmp_path: Path) -> None:
    from tests.engine_cli import cli

    defs = tmp_path / "defs.toml"
    defs.write_text('[defaults]\ntimezone = "UTC"\n[[event]]\nname = "hello"\nrun = "true"\n')
    given = forms_of(pg_server, pg_dsn)[0]
    done = cli("load", str(defs), "--db", given)
    assert done.returncode == 0, done.stderr
    listed = cli("list", "--json", "--db", forms_of(pg_server, pg_dsn)[2])
    assert listed.returncode == 0 and '"hello"' in listed.stdout, listed.stderr
