"""Keys that open a text field keep what is typed straight after them, however fast it comes (a paste, keys
an SSH connection sends in one packet): ``/printer`` filters for "printer", it never replies (``r``).

Textual hands each key to the widget focused when the key is read; a screen's ordinary binding runs only
once the key has gone through that widget, by which time the keys after it have been handed to the list
too. So such a key is a *priority* binding (its action runs before the next key is read) whose action ends
with the field focused at once (:func:`focus_now`), or with the form it opened mounted and its field
focused (:func:`until_shown`). Where text is being typed already, the key is typed in
(:func:`not_while_typing`).
"""

from __future__ import annotations

from textual.actions import SkipAction
from textual.app import App
from textual.screen import Screen
from textual.widget import AwaitMount, Widget
from textual.widgets import Input, TextArea


def typing(screen: Screen) -> bool:
    """Whether a text field (an Input or a text area) has the focus: the keys are typed into it."""
    return isinstance(screen.focused, Input | TextArea)


def not_while_typing(screen: Screen) -> None:
    """Let the key be typed into the field that has the focus, if one has (see :func:`typing`). A screen
    also hides such keys from its footer then, in its ``check_action``."""
    if typing(screen):
        raise SkipAction


def focus_now(screen: Screen, field: Widget) -> None:
    """Focus ``field`` at once (``Widget.focus`` waits for the next idle moment, after the keys typed on)."""
    screen.set_focus(field)


async def until_shown(app: App) -> None:
    """Wait until the screen the action pushed has mounted and focused its field (forms focus theirs on
    mount): the keys typed on go to it."""
    shown = app.screen
    if not shown.is_mounted:
        await AwaitMount(shown, [shown])
