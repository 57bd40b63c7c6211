"""The footer: Textual's, minus a rebuild every time a key is enabled or disabled.

Textual's `Footer` recomposes itself (unmounts and mounts every key, then a layout) whenever
the bindings are refreshed. A run starting or ending only dims `r` and lights `c` (or the
other way round), and under a flood of log lines that rebuild was the longest stall of the
screen (50-70 ms). `RunFooter` flips the keys' `disabled` flag in place when the keys shown
are the same ones, and falls back on a full recompose otherwise.

It also shows only the keys that fit (in the bindings' order, which puts Run, Cancel, Help and
Quit first): Textual's lets the last ones run on under the command palette's key, which read
`t ▏^p paletteh` at 80 columns. The others are in Help (`?`) and the palette.
"""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

# one shown key: (key, description, action, enabled, tooltip, key as shown)
KeySig = tuple[str, str, str, bool, str, str]
PALETTE_ACTION = "command_palette"


class RunFooter(Footer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shown: list[KeySig] | None = None  # what the keys on screen were built from

    def _signature(self) -> list[KeySig] | None:
        """The keys `Footer.compose` would show now (None: something this does not handle)."""
        active = self.screen.active_bindings
        out: list[KeySig] = []
        seen: set[str] = set()
        for _, binding, enabled, tooltip in active.values():
            if not binding.show:
                continue
            if binding.group is not None:
                return None  # grouped keys: leave them to Footer
            if binding.action in seen:
                continue  # Footer shows one key per action
            seen.add(binding.action)
            shown = self.app.get_key_display(binding)
            out.append((binding.key, binding.description, binding.action, enabled, tooltip, shown))
        palette: KeySig | None = None
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            entry = active.get(self.app.COMMAND_PALETTE_BINDING)
            if entry is not None:
                _, binding, enabled, tooltip = entry
                shown = self.app.get_key_display(binding)
                palette = (
                    binding.key,
                    binding.description,
                    binding.action,
                    enabled,
                    tooltip,
                    shown,
                )
        return self._fitting(out, palette)

    def _fitting(self, keys: list[KeySig], palette: KeySig | None) -> list[KeySig]:
        """The first keys that fit beside the palette's key (all of them before the footer
        has a width)."""
        width = self.size.width
        if width <= 0:
            return keys + ([palette] if palette else [])

        def cells(sig: KeySig) -> int:  # FooterKey's padding, or its margin when compact
            return len(sig[5]) + len(sig[1]) + (2 if self.compact else 3)

        room = width - (cells(palette) + 1 if palette else 0)
        out: list[KeySig] = []
        for sig in keys:
            room -= cells(sig)
            if room < 0:
                break
            out.append(sig)
        return out + ([palette] if palette else [])

    def compose(self):
        self._shown = self._signature() if self._bindings_ready else None
        allowed = None if self._shown is None else {sig[2] for sig in self._shown}
        for widget in super().compose():
            if (
                allowed is not None
                and isinstance(widget, FooterKey)
                and widget.action != PALETTE_ACTION
                and widget.action not in allowed
            ):
                continue
            yield widget

    def on_resize(self) -> None:
        if self._bindings_ready:
            self.call_after_refresh(self._update_keys)

    def bindings_changed(self, screen: Screen[Any]) -> None:
        # unlike Footer, not skipped while the terminal has no focus: the keys must follow
        # the run (a run started by a reload or a script, a presenter's unfocused window)
        self._bindings_ready = True
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self._update_keys)

    def _update_keys(self) -> None:
        new = self._signature()
        old = self._shown
        keys = list(self.query(FooterKey))
        same_keys = (
            new is not None
            and old is not None
            and len(new) == len(old) == len(keys)
            and all(n[:3] == o[:3] and n[4] == o[4] for n, o in zip(new, old, strict=True))
        )
        if not same_keys:
            self.call_later(self.recompose)
            return
        assert new is not None
        for widget, sig in zip(keys, new, strict=True):
            off = not sig[3]
            if widget.disabled != off or widget.has_class("-disabled") != off:
                widget.disabled = off
                # FooterKey draws a dimmed key from its `-disabled` class (and ignores clicks
                # by `_disabled`), both set when it is made: flip them too, or the key keeps
                # the look it was made with (`c Cancel` grey while a run goes)
                widget._disabled = off
                widget.set_class(off, "-disabled")
        self._shown = new
