"""The request verbs (trigger, restart, kill, hold, release, ack, ...): one table, VERBS, whose
rows name each verb's handler and how it reads on the command line and in the console. The
requests stage dispatches through it; the CLI's verbs and the console's keys are built from it.
Imports the tick's rooms; imported by the stages and the console (lazily by the CLI)."""

from evman.engine.verbs.table import VERBS, Confirm, Option, Verb, verb_named
from evman.engine.verbs.targets import Handler, RequestError

__all__ = ["VERBS", "Confirm", "Handler", "Option", "RequestError", "Verb", "verb_named"]
