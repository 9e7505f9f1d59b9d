"""The request verbs, one row each: the name a request row carries, the handler that answers it,
and how the verb reads on the command line and in the console. The requests stage dispatches
through this table; `evman <verb>` and the console's keys and actions are built from it.

A new verb is a row here plus its handler (HACKING.md, "Adding a request verb"). A row names its
handler by module and function (`HandlerIn`), imported at the first request it answers: the
console's keys and the command line read this table without importing the tick's rooms."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from evman.engine.verbs import holds
from evman.engine.verbs.targets import Handler, params_arg
from evman.engine.vocabulary import ACTIVE_STATES, RESTARTABLE, RunState

if TYPE_CHECKING:
    from evman.engine.tick.context import Tick

TARGETS: Final = {
    "event": "EVENT",
    "pattern": "PATTERN",
    "tag": "tag:NAME",
    "group": "group:NAME",
    "run": "run:N",
    "alert": "alert:N",
}
"""What a request's target may name (a pattern: a glob over event names, "etl-*"), and how the
command line writes it."""


@dataclass(frozen=True)
class HandlerIn:
    """The handler `function` of engine/verbs/<module>.py, called as that function is (a
    Handler), its module imported at the first call."""

    module: str
    function: str

    def __call__(self, tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
        return self.resolve()(tick, target, args, who)

    def resolve(self) -> Handler:
        found: Handler = getattr(importlib.import_module(f"evman.engine.verbs.{self.module}"), self.function)
        return found


class Option(NamedTuple):
    """A command-line option of a verb; the request carries its value as args[key]."""

    flag: str
    """As typed: "--force"."""
    key: str
    """Its key in the request's `args` JSON object."""
    help: str
    metavar: str | None = None
    """None: a flag (args[key] is true when given, absent otherwise); else the option takes a
    value, sent as text for the handler to read (and to refuse, in words, when it is wrong)."""
    multiple: bool = False
    """Given any number of times: `parse` gets the tuple of every value given (none: absent)."""
    parse: Callable[[Any, datetime], Any] | None = None
    """The value as the request carries it, from the text typed and the time it was typed (a
    relative "+2h" means from now, not from when an engine reads it); ValueError says what is
    wrong. None: the text as typed."""


class Confirm(NamedTuple):
    """The console asks before it sends the request: "<label> <what>?", then `detail`."""

    detail: str
    yes: str
    """The confirming button's word."""
    event_words: str = "{event}"
    """How the question names an event target ("the active run of {event}")."""
    needs_active: bool = False
    """Asks only when the target has a waiting or running run; else says there is none."""


class Verb(NamedTuple):
    name: str
    """What a `requests` row's `verb` says, and the command: `evman <name> TARGET`."""
    handler: Handler
    summary: str
    """What it does, one sentence: the first line of `evman <name> --help`."""
    examples: tuple[str, ...]
    """Command lines that use it, for --help."""
    more: str = ""
    """A paragraph of --help after the summary, where one sentence does not say it all."""
    targets: tuple[str, ...] = ("event",)
    """What its target may name (keys of TARGETS)."""
    options: tuple[Option, ...] = ()
    key: str | None = None
    """Its console key; None: the command line and the mailbox only."""
    label: str = ""
    """The console's short name for it (footer, palette)."""
    what: str = ""
    """What the key does, for the help screen, the palette and the footer's tooltip."""
    run_states: frozenset[RunState] = frozenset()
    """Where the console has a run selected, it names the run (`run:N`) only when the run is in
    one of these states, else its event (the run detail screen)."""
    confirm: Confirm | None = None

    def takes(self, kind: str) -> bool:
        return kind in self.targets

    @property
    def target_words(self) -> str:
        """The target as the command line writes it: "EVENT|run:N"."""
        return "|".join(TARGETS[t] for t in self.targets)

    @property
    def help(self) -> str:
        """`evman <name> --help`'s text (click keeps an indented paragraph's line as it is)."""
        tried = (
            f"Example: {self.examples[0]}"
            if len(self.examples) == 1
            else "Examples:\n\n" + "\n\n".join(f"  {e}" for e in self.examples)
        )
        return "\n\n".join(p for p in (self.summary, self.more, tried) if p)


FORCE: Final = Option("--force", "force", "Start now, ignoring its window and requires.")
PARAM: Final = Option(
    "--param",
    "params",
    "A run parameter (repeatable), checked against the event's params.",
    metavar="NAME=VALUE",
    multiple=True,
    parse=params_arg,
)
COMMENT: Final = Option("--comment", "comment", "Why; recorded on the run with your name.", metavar="TEXT")
UNTIL: Final = Option(
    "--until", "until", "Release by itself then: ISO time, or +DURATION (+2h).", metavar="TIME", parse=holds.until_arg
)

VERBS: Final[tuple[Verb, ...]] = (
    Verb(
        "trigger",
        HandlerIn("runs", "trigger"),
        "Start a new run of EVENT now (it still obeys its requires and window).",
        (
            "evman trigger fetch-feeds",
            "evman trigger monthly-invoice --param customer=acme --param date=2026-03-01",
            "evman trigger group:nightly-billing",
        ),
        more="TARGET is an EVENT, or group:NAME (the group's first events; the others follow them). "
        "Each --param is checked against the event's params; a command sees it as EVMAN_PARAM_<NAME>, "
        "a callable as a keyword argument, an HTTP call in its body.",
        targets=("event", "group"),
        options=(FORCE, PARAM),
        key="t",
        label="Trigger",
        what="Trigger a new run of the selected event now",
    ),
    Verb(
        "restart",
        HandlerIn("runs", "restart"),
        "Re-run a failed, killed, lost or missed run (EVENT's latest, or run:N), after running its prepare step.",
        ("evman restart run:12",),
        targets=("event", "run"),
        options=(FORCE,),
        key="r",
        label="Restart",
        what="Restart the selected run (or the event's latest run)",
        run_states=RESTARTABLE,
    ),
    Verb(
        "kill",
        HandlerIn("runs", "kill"),
        "Kill EVENT's running run (or run:N): TERM to its process group, then KILL.",
        ("evman kill publish",),
        targets=("event", "run"),
        key="K",
        label="Kill",
        what="Kill the selected event's active run (asks first)",
        run_states=ACTIVE_STATES,
        confirm=Confirm(
            "TERM to its process group, then KILL; the engine records it as killed.",
            "Kill",
            event_words="the active run of {event}",
            needs_active=True,
        ),
    ),
    Verb(
        "hold",
        HandlerIn("holds", "hold"),
        "Hold TARGET: no new runs start; waiting ones wait with reason 'held'.",
        (
            "evman hold promote-to-production",
            "evman hold 'etl-*' --until 2026-12-24T18:00",
            "evman hold tag:nightly --until +3h",
        ),
        more="TARGET is an EVENT, a pattern such as 'etl-*' (quote it), tag:NAME or group:NAME.",
        targets=("event", "pattern", "tag", "group"),
        options=(UNTIL,),
        key="h",
        label="Hold",
        what="Hold the event: no new runs start",
    ),
    Verb(
        "release",
        HandlerIn("holds", "release"),
        "Release a held TARGET (an EVENT, a pattern such as 'etl-*', tag:NAME or group:NAME).",
        ("evman release promote-to-production",),
        targets=("event", "pattern", "tag", "group"),
        key="u",
        label="Release",
        what="Release a held event",
    ),
    Verb(
        "ack",
        HandlerIn("acks", "ack"),
        "Acknowledge EVENT's open alerts, or one alert:N: stops repeat paging.",
        ("evman ack alert:7",),
        targets=("event", "alert"),
        key="a",
        label="Ack",
        what="Acknowledge the selected alert, or the event's open alerts",
    ),
    Verb(
        "backfill",
        HandlerIn("backfill", "backfill"),
        "Make the occurrences EVENT's schedule (and calendar) would have made from --from to --to, once each: "
        "a slot that already has a run (live or backfilled) is not run again. Each run gets "
        "EVMAN_SCHEDULED_FOR = its slot, its business date. A date means that whole day in the event's zone.",
        (
            "evman backfill daily-report --from 2026-03-02 --to 2026-03-06 --dry-run",
            "evman backfill daily-report --from 2026-03-02 --to 2026-03-06 --max-parallel 2",
        ),
    ),
    Verb(
        "approve",
        HandlerIn("approvals", "approve"),
        "Approve the run of EVENT that awaits approval (or run:N): it may start.",
        ('evman approve run:12 --comment "release notes checked"',),
        more="Your name and the comment are recorded on the run, and the approver's route is told. "
        "An approval counts only for a run that awaits one when you give it. The console's key is A "
        "(it asks for the comment).",
        targets=("event", "run"),
        options=(COMMENT,),
        run_states=frozenset({RunState.WAITING}),
    ),
    Verb(
        "reject",
        HandlerIn("approvals", "reject"),
        "Reject the run of EVENT that awaits approval (or run:N): it is skipped, never run.",
        ('evman reject promote-to-production --comment "not on a Friday"',),
        more="The console's key is X (it asks for the comment).",
        targets=("event", "run"),
        options=(COMMENT,),
        run_states=frozenset({RunState.WAITING}),
    ),
)
"""Every request verb, in the order the console's footer shows their keys."""

_BY_NAME: Final = {verb.name: verb for verb in VERBS}


def verb_named(name: str) -> Verb | None:
    """The verb a request row names (case and blanks ignored), or None."""
    return _BY_NAME.get(name.strip().lower())
