"""Tones to theme colours: views say "ok", "bad", "warn"...; this turns them into Rich styles."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from rich.style import Style
from rich.text import Text
from textual.color import Color, ColorParseError

TONE_VARIABLES: Final = {
    "ok": "text-success",
    "bad": "text-error",
    "warn": "text-warning",
    "active": "text-primary",
    "wait": "text-secondary",
}
"""Tone -> theme variable; "plain" keeps the widget's own colour, "muted" fades it."""
BOLD_TONES: Final = frozenset({"bad", "active"})

Palette = Mapping[str, Style]


def palette_for(variables: Mapping[str, str]) -> dict[str, Style]:
    """Rich styles for every tone, from a theme's CSS variables (App.get_css_variables())."""
    out: dict[str, Style] = {}
    background = Color.parse(variables.get("background", "#000000"))
    for tone, name in TONE_VARIABLES.items():
        colour = _solid(variables.get(name) or variables.get("foreground", "#808080"), background)
        out[tone] = Style(color=colour, bold=tone in BOLD_TONES)
    foreground = Color.parse(variables.get("foreground", "#808080"))
    out["muted"] = Style(color=foreground.blend(background, 0.45).hex)
    out["plain"] = Style()
    return out


def _solid(value: str, background: Color) -> str:
    """A hex colour Rich can draw; translucent theme colours are blended onto the background."""
    try:
        colour = Color.parse(value)
    except ColorParseError:  # "auto 60%" and friends: plain text colour
        return "default"
    if colour.a < 1:
        colour = background.blend(colour.with_alpha(1), colour.a)
    return colour.hex


def styled(cell: tuple[str, str], palette: Palette) -> Text:
    text, tone = cell
    return Text(text, style=palette.get(tone, ""), no_wrap=True, end="")
