"""The app's colour themes: dark, light and presenter (high contrast), each with the terminal
palette its status colours are drawn from.

Statuses are styled with ANSI colour names (`status.STYLES`: "bold cyan", "dim"...), which
Textual turns into RGB through the app's ANSI theme (`ansi_theme_dark` / `ansi_theme_light`),
dimming by blending towards the background. The palettes below are chosen so that every
status reads at WCAG AA (4.5:1) on the panels' backgrounds (`background`, `surface`,
`panel`) of their theme, dim ones included; tests/test_app_present.py computes the ratios.
"""

from __future__ import annotations

from rich.color import Color as RichColor
from rich.style import Style
from rich.terminal_theme import TerminalTheme
from textual.color import Color
from textual.constants import DIM_FACTOR
from textual.theme import Theme

DARK = Theme(
    name="tui-flow-dark",
    primary="#4EA8FF",
    secondary="#B48EFF",
    accent="#FFB454",
    background="#0E1116",
    surface="#151A21",
    panel="#1F2630",
    foreground="#E6E6E6",
    success="#5FD068",
    warning="#F2C94C",
    error="#FF6B6B",
    dark=True,
)

LIGHT = Theme(
    name="tui-flow-light",
    primary="#0B5CAD",
    secondary="#6A3FB5",
    accent="#9A5B00",
    background="#FFFFFF",
    surface="#FAFAFA",
    panel="#EEF1F5",
    foreground="#111111",
    success="#1E6B1E",
    warning="#7A5A00",
    error="#B3261E",
    dark=False,
)

# presenter mode: black and white, the brightest accents (for a projector)
CONTRAST = Theme(
    name="tui-flow-contrast",
    primary="#FFD700",
    secondary="#87CEFA",
    accent="#FFD700",
    background="#000000",
    surface="#000000",
    panel="#1A1A1A",
    foreground="#FFFFFF",
    success="#7CFC00",
    warning="#FFD700",
    error="#FF6B6B",
    dark=True,
)

THEMES = (DARK, LIGHT, CONTRAST)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    c = Color.parse(hex_colour)
    return c.r, c.g, c.b


# ANSI 0-7 (black, red, green, yellow, blue, magenta, cyan, white), then the bright ones.
# `bold` does not brighten (truecolor), so the normal ones carry the statuses.
DARK_ANSI = TerminalTheme(
    _rgb("#0E1116"),
    _rgb("#E6E6E6"),
    [_rgb(c) for c in ("#1F2630", "#FF6B6B", "#5FD068", "#F2C94C", "#6CB6FF", "#E58CFF", "#4FD6E8")]
    + [_rgb("#E6E6E6")],
    [_rgb(c) for c in ("#5C6773", "#FF8A8A", "#8AE68F", "#FFE08A", "#9CCBFF", "#F0B3FF", "#8AE8F2")]
    + [_rgb("#FFFFFF")],
)

LIGHT_ANSI = TerminalTheme(
    _rgb("#FFFFFF"),
    _rgb("#111111"),
    [_rgb(c) for c in ("#111111", "#A3140D", "#176117", "#302400", "#0B4F96", "#7A1F8A", "#00566B")]
    + [_rgb("#DDDDDD")],
    [_rgb(c) for c in ("#555555", "#C0392B", "#1E7B1E", "#7A5A00", "#0B5CAD", "#8E3A9D", "#00708A")]
    + [_rgb("#FFFFFF")],
)


def luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG relative luminance."""

    def channel(v: int) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def drawn_colour(
    style: str, theme: Theme, ansi: TerminalTheme, background: str
) -> tuple[int, int, int]:
    """The RGB a status style is drawn in on `background`, as Textual draws it: ANSI
    colours through `ansi`, no colour as the theme's foreground, dim blended towards the
    background by Textual's DIM_FACTOR."""
    parsed = Style.parse(style)
    bg = _rgb(background)
    if parsed.color is None:
        fg = _rgb(theme.foreground or "#000000")
    else:
        t = parsed.color.get_truecolor(ansi)
        fg = (t.red, t.green, t.blue)
    if parsed.dim:
        blended = RichColor.from_rgb(
            *(b + (f - b) * DIM_FACTOR for f, b in zip(fg, bg, strict=True))
        )
        t = blended.get_truecolor()
        fg = (t.red, t.green, t.blue)
    return fg


def panel_backgrounds(theme: Theme) -> dict[str, str]:
    """The backgrounds statuses are drawn on: the screen, the panels, the header."""
    colours = theme.to_color_system().generate()
    return {k: colours[k] for k in ("background", "surface", "panel")}
