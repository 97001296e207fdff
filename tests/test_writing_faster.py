"""Writing faster: canned replies and note templates (replies.toml), ctrl+e into $EDITOR, y copies the ref."""

from __future__ import annotations

import contextlib
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pilot_helpers import settle, shows, type_text, wait_shown, wait_until
from sqlalchemy import select
from textual.widgets import Input, Select, TextArea

from itsm_tui.app import ItsmApp
from itsm_tui.config import ConfigError, ReplyTemplate, load_config, shipped_config_dir
from itsm_tui.models import TicketEntry
from itsm_tui.screens.forms import LinkForm, TextForm
from itsm_tui.screens.formscreen import EditorFailed, edit_in_editor, editor_command
from itsm_tui.screens.help import HelpScreen
from itsm_tui.screens.ticket import TicketScreen
from itsm_tui.services import replies, tickets
from itsm_tui.services.tickets import TicketView
from itsm_tui.services.users import Actor

SIZE = (80, 24)
KNOWN = "{ref}, {title}, {requester}, {agent}, {group}"


# --------------------------------------------------------------------------- the file


def write_replies(conf_dir: Path, body: str) -> Path:
    path = conf_dir / "replies.toml"
    path.write_text(body, encoding="utf-8")
    return path


def refused(conf_dir: Path) -> tuple[Path, str, str]:
    with pytest.raises(ConfigError) as info:
        load_config(conf_dir)
    return Path(info.value.path), info.value.key, info.value.rule


def test_the_shipped_templates_load_in_the_files_order_each_offered_where_its_kind_says(config):
    assert [(t.name, t.kind) for t in config.reply_templates] == [
        ("Acknowledge", "reply"),
        ("Ask for details", "reply"),
        ("Resolved, please confirm", "reply"),
        ("Called the requester", "note"),
        ("Handover", "note"),
        ("Vendor case opened", "both"),
    ]
    assert [t.name for t in replies.offered(config, public=True)] == [
        "Acknowledge",
        "Ask for details",
        "Resolved, please confirm",
        "Vendor case opened",
    ]
    assert [t.name for t in replies.offered(config, public=False)] == [
        "Called the requester",
        "Handover",
        "Vendor case opened",
    ]
    # The closing quotes on their own line leave no empty line; a trailing space to type after is kept.
    assert config.reply_templates[3].text == "Called {requester} about {ref}: "


def test_an_override_replaces_the_shipped_templates_and_kind_defaults_to_both(tmp_path, monkeypatch):
    monkeypatch.delenv("ITSM_CONFIG_DIR", raising=False)
    write_replies(
        tmp_path, '[[templates]]\nname = "  Thanks,\\n  bye "\ntext = """\nThanks {{{requester}}}!\n"""\n'
    )
    config = load_config(tmp_path)
    assert config.sources["replies.toml"] == tmp_path / "replies.toml"
    assert config.sources["sla.toml"] == shipped_config_dir() / "sla.toml"
    assert config.reply_templates == (ReplyTemplate("Thanks, bye", "both", "Thanks {{{requester}}}!"),)


def test_a_file_without_templates_offers_none(conf_dir):
    write_replies(conf_dir, "# nothing canned here\n")
    assert load_config(conf_dir).reply_templates == ()


BAD_FILES = [
    (
        '[[templates]]\nname = "Ack"\ntext = "Hello {requestor}, about {ref}"\n',
        "templates[0].text",
        f"template 'Ack': unknown placeholder {{requestor}}; known: {KNOWN} (did you mean {{requester}}?)",
    ),
    (
        '[[templates]]\nname = "A"\ntext = "x"\n[[templates]]\nname = "Ticket"\ntext = "See {ticket_url}"\n',
        "templates[1].text",
        f"template 'Ticket': unknown placeholder {{ticket_url}}; known: {KNOWN}",
    ),
    (
        '[[templates]]\nname = "Positional"\ntext = "Hello {}"\n',
        "templates[0].text",
        f"template 'Positional': unknown placeholder {{}}; known: {KNOWN}",
    ),
    (
        '[[templates]]\nname = "Padded"\ntext = "{ref:>12} {title!r}"\n',
        "templates[0].text",
        "template 'Padded': write the placeholder as {ref}, without a format",
    ),
    (
        '[[templates]]\nname = "Brace"\ntext = "a { b"\n',
        "templates[0].text",
        "template 'Brace': a { or } that is no part of a placeholder; write {{ and }} for a brace "
        "that is text",
    ),
    (
        '[[templates]]\nname = "Closing"\ntext = "done }"\n',
        "templates[0].text",
        "template 'Closing': a { or } that is no part of a placeholder; write {{ and }} for a brace "
        "that is text",
    ),
    (
        '[[templates]]\nname = "Ack"\ntxt = "Hello"\n',
        "templates[0].txt",
        "unknown key; [templates[0]] knows name, kind, text (did you mean 'text'?)",
    ),
    (
        '[[template]]\nname = "Ack"\ntext = "Hello"\n',
        "template",
        "unknown key; the file's top level knows templates (did you mean 'templates'?)",
    ),
    (
        '[[templates]]\nname = "Ack"\nkind = "public"\ntext = "Hello"\n',
        "templates[0].kind",
        'must be "reply", "note" or "both", not \'public\'',
    ),
    (
        '[[templates]]\nname = "Ack"\ntext = "Hello"\n[[templates]]\nname = " Ack"\ntext = "Hi"\n',
        "templates[1].name",
        "template 'Ack' is defined twice",
    ),
    ('[[templates]]\nname = "Ack"\ntext = "  \\n "\n', "templates[0].text", "must be a non-empty text"),
    (
        '[[templates]]\ntext = "Hello"\n',
        "templates[0].name",
        "needs a name (what the form's template list shows)",
    ),
    ('templates = "Hello"\n', "templates", "must be a list of [[templates]] tables"),
]


@pytest.mark.parametrize(
    ("body", "key", "rule"), BAD_FILES, ids=[f"{n}-{b[1]}" for n, b in enumerate(BAD_FILES)]
)
def test_a_bad_template_stops_start_up_naming_the_file_the_template_and_the_rule(conf_dir, body, key, rule):
    path = write_replies(conf_dir, body)
    assert refused(conf_dir) == (path, key, rule)


# --------------------------------------------------------------------------- rendering


def a_ticket(**fields) -> TicketView:
    at = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    values: dict = {
        "ref": "INC0000042",
        "kind": "incident",
        "title": "VPN drops every hour",
        "description": "",
        "requester": "Rita Ortiz",
        "category": None,
        "service": None,
        "ci": None,
        "impact": "medium",
        "urgency": "medium",
        "priority": 3,
        "status": "in_progress",
        "pending_reason": None,
        "group": "NET-L2",
        "assignee": "net1",
        "resolution_code": None,
        "resolution_note": None,
        "opened_at": at,
        "updated_at": at,
        "responded_at": None,
        "resolved_at": None,
        "closed_at": None,
        "cancelled_at": None,
        "response_due_at": None,
        "resolution_due_at": None,
        "response_state": "running",
        "resolution_state": "running",
        "reopen_count": 0,
        "escalation_count": 0,
        "version": 1,
    }
    return TicketView(**{**values, **fields})


AGENT = Actor(id=7, login="net1", name="Nina Keller", roles=frozenset({"support_l2"}))
EVERY = ReplyTemplate("All", "both", "{ref} / {title} / {requester} / {agent} / {group} / {{ref}}")


def test_render_fills_every_placeholder_and_turns_double_braces_into_one(config):
    assert (
        replies.render(EVERY, a_ticket(), AGENT, config)
        == "INC0000042 / VPN drops every hour / Rita Ortiz / Nina Keller / Network & Infrastructure L2 "
        "/ {ref}"
    )


def test_render_inserts_peoples_text_literally_never_as_placeholders_or_markup(config):
    ticket = a_ticket(requester="{ref}", title="[red]x[/red] {agent}}")
    assert (
        replies.render(EVERY, ticket, AGENT, config)
        == "INC0000042 / [red]x[/red] {agent}} / {ref} / Nina Keller / Network & Infrastructure L2 / {ref}"
    )


def test_render_without_a_group_or_a_name_and_with_a_group_the_catalog_no_longer_has(config):
    nameless = Actor(id=8, login="temp7", name="", roles=frozenset({"agent"}))
    assert replies.render(EVERY, a_ticket(group=None), nameless, config).split(" / ")[3:5] == ["temp7", ""]
    assert replies.render(EVERY, a_ticket(group="OLD-L2"), AGENT, config).split(" / ")[4] == "OLD-L2"


# --------------------------------------------------------------------------- the editor, without the console


def fake_editor(tmp_path: Path, script: str) -> str:
    path = tmp_path / "editor.sh"
    path.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    path.chmod(0o700)
    return str(path)


def test_the_editor_gets_a_private_file_and_its_text_comes_back(tmp_path):
    mode = tmp_path / "mode"
    editor = fake_editor(tmp_path, f'stat -c %a "$1" > {mode}\nprintf \'\\nPS: rebooted\\n\' >> "$1"\n')
    assert edit_in_editor("Hello", {"EDITOR": editor}) == "Hello\nPS: rebooted"
    assert mode.read_text().strip() == "600"
    # A text that ended with a newline keeps the editor's.
    assert edit_in_editor("Hello\n", {"EDITOR": editor}) == "Hello\n\nPS: rebooted\n"


def test_visual_wins_over_editor_and_arguments_are_kept_and_vi_is_the_fallback():
    assert editor_command({"VISUAL": "code --wait", "EDITOR": "nano"}) == ["code", "--wait"]
    assert editor_command({"VISUAL": " ", "EDITOR": "nano -R"}) == ["nano", "-R"]
    assert editor_command({}) == ["vi"]


def test_a_missing_or_failing_editor_is_one_plain_line_and_no_temporary_file_stays(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read again
    with pytest.raises(EditorFailed) as info:
        edit_in_editor("x", {"EDITOR": str(tmp_path / "no-such-editor")})
    assert str(info.value) == (
        f"No editor {str(tmp_path / 'no-such-editor')!r} found: set $EDITOR (or $VISUAL) to one; "
        "your text is kept."
    )
    failing = fake_editor(tmp_path, "exit 3\n")
    with pytest.raises(EditorFailed) as info:
        edit_in_editor("x", {"EDITOR": failing})
    assert str(info.value) == f"The editor {failing!r} ended with exit status 3; your text is kept as it was."
    assert list((tmp_path / "tmp").iterdir()) == []


# --------------------------------------------------------------------------- the console


def new_ticket(db, config, actor, **fields) -> tuple[int, str]:
    with db.session() as s:
        ticket = tickets.create_ticket(s, config, actor, **fields)
        return ticket.id, ticket.ref


def bodies(db, ticket_id: int, kind: str) -> list[str]:
    with db.read_session() as s:
        rows = s.scalars(
            select(TicketEntry.body)
            .where(TicketEntry.ticket_id == ticket_id, TicketEntry.kind == kind)
            .order_by(TicketEntry.id)
        )
        return list(rows)


async def open_ticket(app, pilot, ticket_id: int) -> TicketScreen:
    app.open_ticket(ticket_id)
    await wait_until(
        pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.detail is not None, "the ticket"
    )
    await settle(pilot)
    return app.screen


async def open_text_form(app, pilot, key: str) -> TextForm:
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(app.screen, TextForm), "the reply or note form")
    await settle(pilot)
    return app.screen


async def pick(pilot, form: TextForm, downs: int) -> None:
    """ctrl+t opens the template list; ``downs`` times down from its prompt, then Enter."""
    await pilot.press("ctrl+t")
    await settle(pilot)
    assert form.field_of("template", Select).expanded
    for _ in range(downs):
        await pilot.press("down")
    await pilot.press("enter")
    await settle(pilot)


async def test_a_canned_reply_picked_in_the_reply_form_is_saved_as_shown_and_y_copies_the_ref(
    staff_sqlite, config, monkeypatch
):
    db, staff = staff_sqlite
    # What people typed holds a placeholder and markup: both must reach the reply as they are.
    ticket_id, ref = new_ticket(
        db, config, staff["lead"], title="[red]x[/red] mail", requester="{ref} Rita", group="SD-L1"
    )
    assert ref == "INC0000001"
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)

        written: list[str] = []
        monkeypatch.setattr(app._driver, "write", written.append)  # what would reach the terminal
        await pilot.press("y")
        await settle(pilot)
        assert (
            "\x1b]52;c;SU5DMDAwMDAwMQ==\x07" in written
        )  # OSC 52: set the clipboard to base64("INC0000001")
        assert "Copied INC0000001" in [n.message for n in app._notifications]

        form = await open_text_form(app, pilot, "r")
        area = form.field_of("text", TextArea)
        assert area.has_focus  # the text first, not the template list
        assert [str(label) for label, _ in form.field_of("template", Select)._options[1:]] == [
            "Acknowledge",
            "Ask for details",
            "Resolved, please confirm",
            "Vendor case opened",
        ]
        await pick(pilot, form, 1)  # Acknowledge, into the empty text
        expected = (
            "Hello {ref} Rita,\n"
            "\n"
            'thank you for reporting this. We are looking into INC0000001 ("[red]x[/red] mail") and will get '
            "back to you as soon as\n"
            "we know more.\n"
            "\n"
            "Kind regards,\n"
            "Agent1, Service Desk L1"
        )
        assert area.text == expected
        assert area.has_focus and form.choice("template") is None  # back to the text, the list at its prompt
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen, "the ticket again")

        await pilot.press("question_mark")  # the help lists the new key
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        await wait_shown(pilot, "y Copy ref")
    assert bodies(db, ticket_id, "reply") == [expected]


async def test_a_note_template_goes_in_at_the_cursor_after_what_was_typed(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, ref = new_ticket(db, config, staff["lead"], title="Printer jammed", requester="Rita")
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        form = await open_text_form(app, pilot, "n")
        assert [value for _, value in form.field_of("template", Select)._options[1:]] == [
            "Called the requester",
            "Handover",
            "Vendor case opened",
        ]
        # A modal form is out of reach of the app's ?: its keys line says them.
        assert shows(app, "ctrl+s save · ctrl+t template · ctrl+e $EDITOR · esc cancel")
        await type_text(pilot, "Spoke to HP.\n")
        await pick(pilot, form, 3)  # Vendor case opened
        await type_text(pilot, "HP-77")
        text = f"Spoke to HP.\nA case was opened with the vendor for {ref}; case number: HP-77"
        assert form.text_of("text") == text
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen, "the ticket again")
    assert bodies(db, ticket_id, "note") == [text]


async def test_ctrl_e_edits_the_text_in_editor_and_says_so_where_the_terminal_cannot_be_lent(
    staff_sqlite, config, tmp_path, monkeypatch
):
    db, staff = staff_sqlite
    ticket_id, _ = new_ticket(db, config, staff["lead"], title="Printer jammed", requester="Rita")
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", fake_editor(tmp_path, "printf '\\nPS: rebooted\\n' >> \"$1\"\n"))
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        form = await open_text_form(app, pilot, "r")
        await type_text(pilot, "Hello")

        # Pilot's headless terminal, like a browser's, cannot be handed to another program.
        await pilot.press("ctrl+e")
        await settle(pilot)
        assert form.error_shown is not None and "cannot lend its terminal to an editor" in form.error_shown
        assert form.text_of("text") == "Hello"

        # A terminal that can: Textual's suspension, stood in for, around the real editor process.
        monkeypatch.setattr(type(app), "suspend", lambda self: contextlib.nullcontext())
        await pilot.press("ctrl+e")
        await settle(pilot)
        assert form.text_of("text") == "Hello\nPS: rebooted"
        assert form.field_of("text", TextArea).has_focus
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen, "the ticket again")

        # In a one-line input ctrl+e is still the end of the line.
        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(app.screen, LinkForm), "the link form")
        await settle(pilot)
        await type_text(pilot, "PRB")
        await pilot.press("home", "ctrl+e")
        await type_text(pilot, "1")
        assert app.screen.field_of("target", Input).value == "PRB1"
    assert bodies(db, ticket_id, "reply") == ["Hello\nPS: rebooted"]
