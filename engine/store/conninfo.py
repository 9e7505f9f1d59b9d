"""What libpq accepts as a connection string, read without libpq: URIs (`postgresql://user@host/db`,
`postgresql:///db?host=/run/sock`, with or without an authority) and `key=value` strings
(`host=/run/sock dbname=db`). evman takes its own options out (`listen=false`), masks the password
in every form, and otherwise hands libpq the text as it was written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

URL_SCHEMES: Final = ("postgresql://", "postgres://")
EVMAN_OPTIONS: Final = ("listen",)
"""Options that evman reads and takes out before libpq sees the string."""
LIBPQ_KEYWORDS: Final = frozenset(
    "host hostaddr port dbname user password passfile require_auth channel_binding connect_timeout "
    "client_encoding options application_name fallback_application_name keepalives keepalives_idle "
    "keepalives_interval keepalives_count tcp_user_timeout replication gssencmode sslmode requiressl "
    "sslcompression sslcert sslkey sslpassword sslcertmode sslrootcert sslcrl sslcrldir sslsni "
    "requirepeer ssl_min_protocol_version ssl_max_protocol_version krbsrvname gsslib gssdelegation "
    "service target_session_attrs load_balance_hosts sslnegotiation min_protocol_version".split()
)
"""The connection keywords of libpq (PostgreSQL 17's list): a `key=value` string names only these."""
MASK: Final = "****"
_PAIR: Final = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*")


@dataclass(frozen=True)
class Setting:
    """One `key=value` of a string: where it stands in the text, and where its value does."""

    key: str
    value: str
    start: int
    end: int
    value_start: int


def is_url(target: object) -> bool:
    """Whether --db names a PostgreSQL database (a URI, or a `key=value` string of libpq keywords)
    rather than a SQLite file."""
    text = str(target)
    if text.startswith(URL_SCHEMES):
        return True
    settings = key_values(text) or []
    return bool(settings) and all(s.key in LIBPQ_KEYWORDS or s.key in EVMAN_OPTIONS for s in settings)


def key_values(text: str) -> list[Setting] | None:
    """The settings of a `key=value` string (quoted values unescaped), or None when it is not one."""
    out: list[Setting] = []
    at = 0
    while at < len(text) and text[at:].strip():
        pair = _PAIR.match(text, at)
        if pair is None:
            return None
        value, end = _value(text, pair.end())
        if value is None:
            return None
        out.append(Setting(pair[1], value, at, end, pair.end()))
        at = end
    return out


def _value(text: str, at: int) -> tuple[str | None, int]:
    """A value from `at`: 'quoted' (\\' and \\\\ escaped) or up to the next blank; (None, at) if unclosed."""
    quoted = text.startswith("'", at)
    out, i = [], at + 1 if quoted else at
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if (quoted and char == "'") or (not quoted and char.isspace()):
            return "".join(out), i + 1 if quoted else i
        out.append(char)
        i += 1
    return (None, at) if quoted else ("".join(out), i)


@dataclass(frozen=True)
class Uri:
    """A libpq URI in its parts, as written (percent-encoding kept)."""

    scheme: str
    authority: str
    path: str
    query: list[str]

    @classmethod
    def read(cls, text: str) -> Uri:
        scheme = next(s for s in URL_SCHEMES if text.startswith(s))
        rest, _, query = text[len(scheme) :].partition("?")
        slash = rest.find("/")
        authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
        return cls(scheme, authority, path, [q for q in query.split("&") if q] if query else [])

    def option(self, key: str) -> str | None:
        for item in self.query:
            name, _, value = item.partition("=")
            if unquote(name) == key:
                return unquote(value)
        return None

    def text(self) -> str:
        return self.scheme + self.authority + self.path + ("?" + "&".join(self.query) if self.query else "")


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """(the string libpq gets, evman's own options taken out of it: listen=false)."""
    if url.startswith(URL_SCHEMES):
        uri = Uri.read(url)
        ours = {k: v for k in EVMAN_OPTIONS if (v := uri.option(k)) is not None}
        kept = [q for q in uri.query if unquote(q.partition("=")[0]) not in EVMAN_OPTIONS]
        return Uri(uri.scheme, uri.authority, uri.path, kept).text(), ours
    settings = key_values(url) or []
    ours = {s.key: s.value for s in settings if s.key in EVMAN_OPTIONS}
    text = url
    for s in reversed([s for s in settings if s.key in EVMAN_OPTIONS]):
        text = text[: s.start] + text[s.end :]
    return text.strip() if ours else url, ours


def masked(url: str) -> str:
    """The string with its password as ****, whichever form it takes, for every message and log line."""
    if url.startswith(URL_SCHEMES):
        uri = Uri.read(url)
        user, at, host = uri.authority.rpartition("@")
        if at and ":" in user:
            user = user.split(":", 1)[0] + ":" + MASK
        query = [q.split("=", 1)[0] + "=" + MASK if unquote(q.split("=", 1)[0]) == "password" else q for q in uri.query]
        return Uri(uri.scheme, user + at + host, uri.path, query).text()
    text = url
    for s in reversed([s for s in key_values(url) or [] if s.key == "password"]):
        text = text[: s.value_start] + MASK + text[s.end :]
    return text


def dbname(url: str) -> str | None:
    """The database the string names, if it names one (libpq's default is the user's name)."""
    if url.startswith(URL_SCHEMES):
        uri = Uri.read(url)
        return uri.option("dbname") or unquote(uri.path.lstrip("/")) or None
    return next((s.value for s in key_values(url) or [] if s.key == "dbname"), None)
