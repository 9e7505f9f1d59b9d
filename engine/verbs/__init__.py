"""The request verbs (trigger, restart, kill, hold, release, ack, ...): one table, VERBS, whose
rows name each verb's handler and how it reads on the command line and in the console. The
requests stage dispatches through it; the CLI's verbs and the console's keys are built from it.
The handlers import the tick's rooms, each at the first request it answers (`HandlerIn`): the
table itself is light. Imported by the stages and the console (lazily by the CLI)."""

from evman.engine.verbs.table import VERBS, Confirm, HandlerIn, Option, Verb, verb_named
from evman.engine.verbs.targets import Handler, RequestError

__all__ = ["VERBS", "Confirm", "Handler", "HandlerIn", "Option", "RequestError", "Verb", "verb_named"]
