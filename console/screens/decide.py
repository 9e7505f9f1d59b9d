"""Approve or reject a run awaiting approval: the question, a comment (recorded on the run with
the operator's name), and the answer. ModalScreen[str | None]: the comment ("" for none) when
confirmed, None when cancelled."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


class DecideScreen(ModalScreen[str | None]):
    """Enter (in the comment) or the button confirms; Escape and Cancel leave the run waiting."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, verb: str) -> None:
        super().__init__()
        self.question = question
        self.verb = verb

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Static(self.question, id="confirm-question")
            yield Input(placeholder="comment (recorded on the run with your name)", id="decide-comment")
            with Horizontal(id="confirm-buttons"):
                yield Button(self.verb.capitalize(), variant="error", id="confirm-yes")
                yield Button("Cancel", variant="default", id="confirm-no")

    def on_mount(self) -> None:
        self.query_one("#decide-comment", Input).focus()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.dismiss(self.query_one("#decide-comment", Input).value.strip())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        comment = self.query_one("#decide-comment", Input).value.strip()
        self.dismiss(comment if event.button.id == "confirm-yes" else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
