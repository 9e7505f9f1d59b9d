"""Crontab import: Debian cron's reading of system and user crontabs, and the refusals."""

from __future__ import annotations

import functools
import pwd
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from evman.engine import crontab
from evman.engine.crontab import CrontabError, CrontabImport
from evman.engine.crontab.entries import KNOWN_COMMANDS, KNOWN_USERS
from evman.engine.crontab.system import COMMAND_ACCOUNTS
from evman.engine.timing.schedules import parse_schedule

DATA = Path(__file__).parent.parent / "data"
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")


# Keep these tests about the crontab reader, whatever engine.schedules says today.
parse_crontab = functools.partial(crontab.parse_crontab, check_schedule=None)


def load(relative: str, **options: Any) -> CrontabImport:
    path = DATA / relative
    return parse_crontab(path.read_text(), source=str(path), **options)


def problems_of_at(text: str, source: str) -> list[tuple[int, str]]:
    with pytest.raises(CrontabError) as caught:
        parse_crontab(text, source=source)
    return caught.value.problems


def problems_of(text: str, **options: Any) -> list[tuple[int, str]]:
    with pytest.raises(CrontabError) as caught:
        parse_crontab(text, source="tab", **options)
    return caught.value.problems


# -- system crontabs (/etc/cron.d) ---------------------------------------------------


def test_php_cron_d_file_keeps_user_schedule_and_command_verbatim() -> None:
    [event] = load("cron.d/php").events
    assert event["user"] == "root"
    assert event["schedule"] == "09,39 * * * *"
    assert event["shell"] == (
        "[ -x /usr/lib/php/sessionclean ] && if [ ! -d /run/systemd/system ]; then /usr/lib/php/sessionclean; fi"
    )
    assert str(event["name"]).startswith("sessionclean-")
    assert "Look for and purge old sessions every 30 minutes." in str(event["description"])
    assert "line 14" in str(event["description"])
    assert "env" not in event and "stdin" not in event


def test_sysstat_lines_get_distinct_names_and_the_path_in_force() -> None:
    first, second = load("cron.d/sysstat").events
    assert first["schedule"] == "5-55/10 * * * *"
    assert second["schedule"] == "59 23 * * *"
    assert first["name"] != second["name"]
    assert str(first["name"]).startswith("debian-sa1-")
    assert first["env"] == {"PATH": "/usr/lib/sysstat:/usr/sbin:/usr/sbin:/usr/bin:/sbin:/bin"}
    assert first["user"] == second["user"] == "root"


def test_certbot_line_keeps_shell_and_path_and_is_named_after_certbot() -> None:
    [event] = load("cron.d/certbot").events
    assert event["env"] == {"SHELL": "/bin/sh", "PATH": "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin"}
    assert str(event["name"]).startswith("certbot-")  # past `test -x` and the random sleep
    assert str(event["shell"]).endswith("&& certbot -q renew")
    assert "SHELL=" not in str(event["description"])  # /bin/sh is what evman uses anyway


def test_local_jobs_reboot_users_mailto_shell_and_a_named_line() -> None:
    reboot, vacuum, rotate = load("cron.d/local-jobs").events
    assert (reboot["schedule"], reboot["user"]) == ("@reboot", "www-data")
    assert reboot["shell"] == "/srv/app/bin/warm-cache --all"
    assert (vacuum["schedule"], vacuum["user"]) == ("30 4 * * mon-fri", "postgres")
    assert "ops@example.com (MAILTO)" in str(vacuum["description"])
    assert "SHELL=/bin/bash; evman runs shell commands with /bin/sh" in str(vacuum["description"])
    assert vacuum["env"] == {"SHELL": "/bin/bash", "HOME": "/srv/app"}  # MAILTO is no env
    assert rotate["name"] == "rotate-uploads"
    assert "MAILTO" not in str(rotate["description"])  # MAILTO="" switched mail off


def test_system_line_without_a_user_is_reported() -> None:
    text = "0 1 * * * root /usr/bin/true\n5 1 * * * /usr/local/bin/report\n"
    problems = problems_of(text, system=True)
    assert [n for n, _ in problems] == [2]
    assert "missing user field" in problems[0][1] and "/usr/local/bin/report" in problems[0][1]


def test_system_is_detected_from_content_and_explicit_choice_wins() -> None:
    text = "0 1 * * * root /usr/sbin/logrotate /etc/logrotate.conf\n@reboot root /bin/true\n"
    detected = parse_crontab(text, source="somewhere/jobs")
    assert [e["user"] for e in detected.events] == ["root", "root"]
    as_user = parse_crontab(text, source="somewhere/jobs", system=False)
    assert "user" not in as_user.events[0]
    assert as_user.events[0]["shell"] == "root /usr/sbin/logrotate /etc/logrotate.conf"


def test_user_crontab_is_detected_from_commands_after_the_schedule() -> None:
    text = "0 1 * * * /usr/bin/backup --full\n*/5 * * * * cd /srv && make\n"
    result = parse_crontab(text, source="my-crontab")
    assert [e.get("user") for e in result.events] == [None, None]
    assert result.events[0]["shell"] == "/usr/bin/backup --full"


def test_the_path_decides_system_or_user_before_the_lines_do() -> None:
    text = "0 1 * * * deploy /srv/app/run\n"
    [system] = parse_crontab(text, source="/etc/cron.d/app").events
    assert (system["user"], system["shell"]) == ("deploy", "/srv/app/run")
    [etc] = parse_crontab(text, source="/etc/crontab").events
    assert etc["user"] == "deploy"
    [user] = parse_crontab(text, source="/var/spool/cron/crontabs/bob").events
    assert ("user" not in user, user["shell"]) == (True, "deploy /srv/app/run")


def test_undecidable_user_field_asks_to_be_told() -> None:
    problems = problems_of("0 1 * * * deploy /srv/app/run\n")
    assert problems[0][0] == 0
    assert "'deploy' could be a user or a command" in problems[0][1]
    assert "--system or --user" in problems[0][1]


# -- the format comes from the content; the folder is a hint ---------------------------


def test_a_system_crontab_copied_into_a_crontabs_folder_is_read_as_one_and_says_so() -> None:
    imported = load("crontabs/nextcloud")
    assert [(e["user"], str(e["shell"]).split()[0]) for e in imported.events] == [("www-data", "php")] * 2
    [(lineno, warning)] = imported.warnings
    assert lineno == 0 and warning.startswith(
        "its folder (crontabs) holds user crontabs, but line 2 names "
        "user 'www-data' after the schedule; read as a system crontab"
    )
    assert "say --user to read it as a user crontab" in warning


def test_a_user_crontab_copied_into_cron_d_is_read_as_one_and_says_so() -> None:
    text = (DATA / "crontabs" / "alice").read_text()
    imported = parse_crontab(text, source=str(DATA / "cron.d" / "alice"))
    assert [e.get("user") for e in imported.events] == [None] * 5
    assert imported.events[0]["shell"] == "cd /home/alice/feeds && ./fetch.sh --quiet"
    [(_, warning)] = imported.warnings
    assert "its folder (cron.d) holds system crontabs, but line 13 runs 'cd' right after the schedule" in warning


def test_a_user_of_this_host_after_the_schedule_makes_a_system_crontab() -> None:
    known = KNOWN_USERS | KNOWN_COMMANDS | COMMAND_ACCOUNTS  # decided without asking the host
    users = [
        u.pw_name
        for u in pwd.getpwall()
        if u.pw_name not in known and shutil.which(u.pw_name) is None and re.fullmatch(r"[a-z_][a-z0-9_-]*", u.pw_name)
    ]
    if not users:
        pytest.skip("this host has no user beyond the well-known system accounts")
    [event] = parse_crontab(f"0 1 * * * {users[0]} /usr/local/bin/report\n", source="jobs").events
    assert (event["user"], event["shell"]) == (users[0], "/usr/local/bin/report")


def test_a_program_on_the_path_after_the_schedule_makes_a_user_crontab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = tmp_path / "frobnicate"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    [event] = parse_crontab("0 1 * * * frobnicate /srv/data\n", source="jobs").events
    assert ("user" not in event, event["shell"]) == (True, "frobnicate /srv/data")


def test_the_same_word_on_every_line_is_a_user_column() -> None:
    """amavisd-new's /etc/cron.d file: 'amavis' after every schedule, a user most hosts lack."""
    in_cron_d = load("cron.d/amavisd-new")
    assert [e["user"] for e in in_cron_d.events] == ["amavis", "amavis"] and in_cron_d.warnings == []
    text = (DATA / "cron.d" / "amavisd-new").read_text()
    elsewhere = parse_crontab(text, source="downloads/amavisd-new")
    assert [e["user"] for e in elsewhere.events] == ["amavis", "amavis"]
    [(_, warning)] = elsewhere.warnings
    assert warning.startswith("read as a system crontab: every entry has 'amavis' after its schedule")
    assert "if 'amavis' is the command, import with --user" in warning


def test_a_user_column_in_a_crontabs_folder_is_refused_with_both_flags_offered() -> None:
    with pytest.raises(CrontabError) as caught:
        load("crontabs/amavisd-new")
    [(lineno, problem)] = caught.value.problems
    assert lineno == 0 and "every entry has 'amavis' after its schedule" in problem
    assert "its folder holds user crontabs and this host has no user 'amavis'" in problem
    assert "say --system if 'amavis' is the user, --user if it is the command" in problem
    assert [e["user"] for e in load("crontabs/amavisd-new", system=True).events] == ["amavis", "amavis"]


def test_a_user_and_a_command_after_the_schedule_is_refused_whatever_the_folder() -> None:
    text = "0 1 * * * root /usr/sbin/logrotate /etc/logrotate.conf\n5 1 * * * /usr/local/bin/report\n"
    for source in ("/var/spool/cron/crontabs/bob", "/etc/cron.d/jobs", "jobs"):
        [(_, problem)] = problems_of_at(text, source)
        assert "line 1 names user 'root' after the schedule, but on line 2 '/usr/local/bin/report'" in problem


# -- user crontabs -------------------------------------------------------------------


def test_user_crontab_env_in_force_at_each_line() -> None:
    fetch, backup, *_ = load("crontabs/alice").events
    assert "user" not in fetch
    assert fetch["env"] == {"SHELL": "/bin/bash", "PATH": "/home/alice/bin:/usr/local/bin:/usr/bin:/bin"}
    assert backup["env"] == {
        "SHELL": "/bin/bash",
        "PATH": "/home/alice/bin:/usr/local/bin:/usr/bin:/bin",
        "BACKUP_DIR": "/srv/backup/alice",
    }  # quotes and blanks around '=' gone
    assert fetch["timezone"] == backup["timezone"] == "Europe/London"  # from CRON_TZ
    assert str(fetch["name"]).startswith("fetch-")
    assert str(fetch["description"]).startswith("Fetch feeds during working hours.")


def test_template_header_comment_is_not_taken_as_a_description() -> None:
    text = "# m h  dom mon dow   command\n0 1 * * * /usr/bin/backup\n"
    [event] = parse_crontab(text, source="t", system=False).events
    assert event["description"] == "Imported from t line 2."


def test_variable_changed_midway_applies_from_its_line_on() -> None:
    text = "LEVEL=low\n0 1 * * * run-a\nLEVEL=high\nTZ=America/New_York\n0 2 * * * run-b\n"
    first, second = parse_crontab(text, source="t", system=False).events
    assert first["env"] == {"LEVEL": "low"} and "timezone" not in first
    assert second["env"] == {"LEVEL": "high", "TZ": "America/New_York"}
    assert second["timezone"] == "America/New_York"


def test_unknown_time_zone_is_reported_on_its_line() -> None:
    problems = problems_of("CRON_TZ=Mars/Olympus\n0 1 * * * /bin/true\n", system=False)
    assert problems == [(1, "unknown time zone 'Mars/Olympus' in CRON_TZ; use a zoneinfo name such as Europe/London")]


# -- % and \% ------------------------------------------------------------------------


def test_percent_starts_stdin_and_further_percents_are_newlines() -> None:
    mail = load("crontabs/alice").events[2]
    assert mail["shell"] == 'mail -s "Monthly report" alice'
    assert mail["stdin"] == "Hello,\n\nThe report covers 100% of hosts.\n"


def test_escaped_percent_in_the_command_loses_its_backslash() -> None:
    tar = load("crontabs/alice").events[3]
    assert tar["shell"] == "tar czf /srv/backup/alice/home-$(date +%Y%m%d).tgz /home/alice/docs"
    assert "stdin" not in tar


@pytest.mark.parametrize(
    ("rest", "command", "stdin"),
    [
        (r"echo a\b", r"echo a\b", None),  # other backslashes stay
        (r"echo \\%x", "echo \\\\", "x"),  # an escaped backslash does not escape '%'
        (r"cat%a\%b%c\d", "cat", "a%b\nc\\d"),  # in stdin: \% -> %, % -> newline
        ("cat%", "cat", ""),  # a bare '%' gives empty stdin
        ("cat%end\\", "cat", "end\\"),  # a trailing backslash is kept
    ],
)
def test_percent_rules_match_cron(rest: str, command: str, stdin: str | None) -> None:
    [event] = parse_crontab(f"0 1 * * * {rest}\n", source="t", system=False).events
    assert event["shell"] == command
    assert event.get("stdin") == stdin


# -- refusals ------------------------------------------------------------------------


def test_anacrontab_is_refused() -> None:
    with pytest.raises(CrontabError) as caught:
        load("crontabs/anacrontab")
    message = str(caught.value)
    assert "this looks like an anacrontab" in message
    assert "evman imports crontabs only" in message
    assert ":10:" in message  # the first anacron-shaped line


def test_anacrontab_with_start_hours_range_is_refused_at_that_line() -> None:
    text = "SHELL=/bin/sh\nRANDOM_DELAY=45\nSTART_HOURS_RANGE=3-22\n1 5 cron.daily nice run-parts /etc/cron.daily\n"
    problems = problems_of(text)
    assert problems[0][0] == 3
    assert "anacrontab (it sets START_HOURS_RANGE)" in problems[0][1]


def test_cronie_random_delay_alone_is_a_note_not_a_refusal() -> None:
    [event] = parse_crontab("RANDOM_DELAY=10\n0 1 * * * /bin/true\n", source="t").events
    assert "up to 10 random minutes (RANDOM_DELAY)" in str(event["description"])
    assert "env" not in event


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[defaults]\ntimezone = "UTC"\n\n[[event]]\nname = "a"\n', "TOML or INI file (section [defaults])"),
        ('[[event]]\nname = "a"\nshell = "true"\n', "evman load"),
        ('{"event": [{"name": "a"}]}\n', "JSON file"),
        ("\x7fELF\x02\x01\x01\x00\x00\x00\x00", "not a text file"),
        ("", "no crontab entries found"),
        ("# just a comment\nMAILTO=root\n\n", "no crontab entries found"),
    ],
)
def test_files_that_are_not_crontabs_are_refused(text: str, expected: str) -> None:
    with pytest.raises(CrontabError) as caught:
        parse_crontab(text, source="defs.toml", skip_invalid=True)
    assert expected in str(caught.value)
    assert str(caught.value).startswith("defs.toml:")


# -- invalid lines -------------------------------------------------------------------

BROKEN = """\
# a comment
0 1 * * * /bin/good
61 1 * * * /bin/minute
abc 1 * * * /bin/word
0 1 * * *
0 1 *
0 1 * 13 * /bin/month
*/0 1 * * * /bin/step
0 22-2 * * * /bin/backwards
@every5m /bin/macro
0 1 * * * * /bin/six-fields
"""


def test_invalid_lines_are_all_reported_with_their_numbers() -> None:
    with pytest.raises(CrontabError) as caught:
        parse_crontab(BROKEN, source="/home/bob/tab", system=False)
    problems = dict(caught.value.problems)
    assert sorted(problems) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert problems[3] == "minute 61 is out of range 0-59"
    assert problems[4] == "minute 'abc' is not a number"
    assert problems[5] == "missing command after the 5 time fields"
    assert problems[6] == "expected 5 time fields and a command, found 3 fields"
    assert problems[7] == "month 13 is out of range 1-12"
    assert "step '0' must be a whole number of at least 1" in problems[8]
    assert "range '22-2' runs backwards" in problems[9]
    assert problems[10].startswith("unknown schedule '@every5m'")
    assert "more than 5 time fields" in problems[11]
    lines = str(caught.value).splitlines()
    assert lines[0] == "/home/bob/tab:3: minute 61 is out of range 0-59"
    assert len(lines) == 9


def test_skip_invalid_keeps_the_good_lines_and_lists_the_rest() -> None:
    result = parse_crontab(BROKEN, source="t", system=False, skip_invalid=True)
    assert [e["shell"] for e in result.events] == ["/bin/good"]
    assert [n for n, _ in result.skipped] == [3, 4, 5, 6, 7, 8, 9, 10, 11]


def test_skip_invalid_with_nothing_valid_still_fails() -> None:
    problems = problems_of("61 1 * * * /bin/x\n", system=False, skip_invalid=True)
    assert problems == [(1, "minute 61 is out of range 0-59"), (0, "no valid crontab entries found")]


def test_names_l_w_and_hash_are_accepted() -> None:
    text = (
        "0 9 * jan-mar,DEC Mon-Fri /bin/a\n0 9 L * * /bin/b\n0 9 15W * * /bin/c\n"
        "0 9 * * 5#2 /bin/d\n0 9 * * 5L /bin/e\n0 9 LW * 7 /bin/f\n"
    )
    result = parse_crontab(text, source="t", system=False)
    assert [e["schedule"] for e in result.events][:3] == ["0 9 * jan-mar,DEC Mon-Fri", "0 9 L * *", "0 9 15W * *"]
    assert len(result.events) == 6


def test_bad_special_fields_are_reported() -> None:
    problems = dict(
        problems_of(
            "0 9 * * 5#6 /bin/a\n0 9 32W * * /bin/b\n0 9 * * fri-xyz /bin/c\n0 9 ? * mon /bin/d\n", system=False
        )
    )
    assert "week number after '#' must be 1-5" in problems[1]
    assert problems[2] == "day of month 32 is out of range 1-31"
    assert problems[3] == "day of week 'xyz' is not a number or a name (sun-sat)"
    assert problems[4] == "day of month '?' is Quartz syntax, not cron's; write '*'"


def test_schedule_parser_has_the_last_word_when_present() -> None:
    def refuse_weekends(spec: str) -> object:
        if spec.endswith("sat"):
            raise ValueError("no weekend work")
        return spec

    problems = problems_of("0 1 * * mon /bin/a\n0 1 * * sat /bin/b\n", system=False, check_schedule=refuse_weekends)
    assert problems == [(2, "schedule '0 1 * * sat': no weekend work")]


def test_fixture_schedules_agree_with_the_real_schedule_parser() -> None:
    for relative in ("cron.d/php", "cron.d/sysstat", "cron.d/certbot", "cron.d/local-jobs", "crontabs/alice"):
        assert load(relative, check_schedule=parse_schedule).events
    specials = "0 9 L * * /bin/b\n0 9 15W * * /bin/c\n0 9 * * 5#2 /bin/d\n0 9 LW * 5L /bin/e\n"
    assert len(parse_crontab(specials, source="t", system=False).events) == 4


# -- names ---------------------------------------------------------------------------


def test_names_are_valid_unique_and_stable() -> None:
    long_word = "/opt/" + "very-long-program-name" * 5 + ".sh"
    text = f"0 1 * * * /bin/backup\n0 1 * * * /bin/backup\n0 2 * * * /bin/backup\n0 3 * * * {long_word}\n"
    names = [str(e["name"]) for e in parse_crontab(text, source="t", system=False).events]
    assert len(set(names)) == 4
    assert names[1] == names[0] + "-2"  # the same line twice
    assert all(NAME_RE.fullmatch(n) and len(n) <= 64 for n in names)
    again = [str(e["name"]) for e in parse_crontab(text, source="t", system=False).events]
    assert again == names


def test_name_prefix_goes_in_front_of_derived_names_only() -> None:
    text = "# evman: name=exact\n0 1 * * * /bin/a\n0 2 * * * /usr/bin/backup.sh\n"
    result = parse_crontab(text, source="t", system=False, name_prefix="Web Server")
    assert result.events[0]["name"] == "exact"
    assert str(result.events[1]["name"]).startswith("web-server-backup-")


def test_bad_and_repeated_name_directives_are_reported() -> None:
    text = (
        "# evman: name=Bad_Name\n0 1 * * * /bin/a\n# evman: name=same\n0 2 * * * /bin/b\n"
        "# evman: name=same\n0 3 * * * /bin/c\n# evman: name=dangling\n"
    )
    problems = dict(problems_of(text, system=False))
    assert "'Bad_Name' must match" in problems[1]
    assert problems[5] == "event name 'same' is already used on line 4"
    assert "not followed by a crontab entry" in problems[7]


def test_a_base_account_that_is_also_a_program_proves_nothing() -> None:
    """Debian has a user 'mail', and `mail` is a program: in a user crontab it is the command."""
    text = "0 8 * * * mail alice < /tmp/report\n0 9 * * * /usr/local/bin/report\n"
    first, _ = parse_crontab(text, source="jobs").events
    assert ("user" not in first, first["shell"]) == (True, "mail alice < /tmp/report")


@pytest.mark.parametrize("blank", ["\x0c", "\x0b", "\u00a0", "\u2003 \t"])
@pytest.mark.parametrize("system", [False, True])
def test_a_command_of_blanks_only_is_missing_not_a_crash(blank: str, system: bool) -> None:
    """Found by the long hostile-input drill: `@daily \\x0c` raised IndexError."""
    user = " root" if system else ""
    with pytest.raises(CrontabError) as caught:
        parse_crontab(f"@daily{user} {blank}\n0 1 * * *{user} {blank}\n", source="t", system=system)
    where = "user field" if system else "schedule"
    assert dict(caught.value.problems)[1] == f"missing command after the {where}"
    assert dict(caught.value.problems)[2] == (
        "missing command after the user field" if system else "missing command after the 5 time fields"
    )
