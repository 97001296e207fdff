"""Keys of one's own: a key file remaps and unbinds bindings by id; help, the footer and the command palette
show the keys in force; the palette offers the screen's actions first and only those the user may take; a
bad key file stops start-up with one line naming the file, the id and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from pilot_helpers import settle, wait_until
from textual.command import Command, CommandList, CommandPalette
from textual.widgets._footer import FooterKey

from itsm_tui.app import ItsmApp, binding_table
from itsm_tui.cli.running import main
from itsm_tui.keymap import KEYS_FILE_ENV, NO_KEYS, load
from itsm_tui.screens.forms import NewTicketForm
from itsm_tui.screens.help import HelpScreen
from itsm_tui.screens.queue import QueueScreen
from itsm_tui.screens.ticket import TicketScreen
from itsm_tui.services import tickets

SIZE = (100, 30)

QUEUE_KEYS = """
[keys]
"queue.next_view" = "w"    # View moves from v to w
queue.new = ""             # New loses n (a dotted key names the same id)
"""


def keys_file(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "keys.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def footer_keys(app: ItsmApp) -> list[tuple[str, str]]:
    return [(key.key_display, key.description) for key in app.screen.query(FooterKey)]


async def palette_entries(app: ItsmApp, pilot) -> list[tuple[str, str]]:
    """Open the palette over the current screen and read what it lists before anything is typed:
    (the entry, its help line), in the order shown."""
    await pilot.press("ctrl+p")
    await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
    palette = app.screen
    commands = palette.query_one(CommandList)
    await wait_until(pilot, lambda: commands.option_count > 5, "the palette's entries")
    await settle(pilot)
    entries = []
    for index in range(commands.option_count):
        option = commands.get_option_at_index(index)
        assert isinstance(option, Command)
        entries.append((str(option.hit.text), str(option.hit.help)))
    await pilot.press("escape")
    return entries


# --------------------------------------------------------------------------- the file


def test_a_key_file_remaps_and_unbinds_by_id(tmp_path):
    path = keys_file(tmp_path, QUEUE_KEYS + '"queue.filter" = "ctrl+f, /"\n')
    keys = load(binding_table, path)
    # "/" is Textual's slash; the space after the comma is dropped.
    assert dict(keys.remapped) == {"queue.next_view": "w", "queue.filter": "ctrl+f,slash"}
    assert keys.unbound == {"queue.new"}
    assert keys.path == path


def test_keys_swapped_between_two_ids_are_no_clash(tmp_path):
    keys = load(binding_table, keys_file(tmp_path, '[keys]\n"queue.take" = "a"\n"queue.assign" = "t"\n'))
    assert dict(keys.remapped) == {"queue.take": "a", "queue.assign": "t"}


def test_no_file_where_the_default_one_would_be_is_no_keys(tmp_path):
    assert load(binding_table, tmp_path / "keys.toml", must_exist=False) is NO_KEYS


BAD_FILES = [
    (
        '[keys]\n"queue.tak" = "T"\n',
        "queue.tak: no key binding has this id (did you mean 'queue.take'?); README lists them",
    ),
    (
        '[keys]\n"queue.take" = "ctrl+tt"\n',
        "queue.take: 'ctrl+tt' is no key name; use a character (T, ?), a name (f6, escape, pageup, slash) "
        "or one with modifiers (ctrl+t, alt+x)",
    ),
    ('[keys]\n"queue.take" = "t,,x"\n', "queue.take: 't,,x' has an empty key between commas"),
    (
        '[keys]\n"queue.take" = 1\n',
        'queue.take: must be a string of keys ("T", "ctrl+t,f6"), or "" to unbind the key',
    ),
    (
        '[keys]\n"queue.take" = "a"\n',
        "queue.take: a is also the key of queue.assign (Assign) where queue.take is in force; "
        "give one of them another key",
    ),
    (
        '[keys]\n"queue.take" = "f4"\n',  # the app's KPI key is in force on the queue too
        "queue.take: f4 is also the key of go.kpi (KPI) where queue.take is in force; give one of them "
        "another key",
    ),
    (
        '[key]\n"queue.take" = "T"\n',
        "key: unknown key; the file's top level knows keys (did you mean 'keys'?)",
    ),
    (
        "[keys\n",
        "(syntax): not valid TOML: Expected ']' at the end of a table declaration (at line 1, column 6)",
    ),
    # '[keys]\n' is 7 bytes and '"queue.take" = "' 16 more: the bad byte is the 24th, on line 2.
    (b'[keys]\n"queue.take" = "\xff"\n', "(encoding): not UTF-8 (byte 24, line 2); save the file as UTF-8"),
]


@pytest.mark.parametrize(
    ("text", "problem"),
    BAD_FILES,
    ids=[
        "unknown-id",
        "bad-key",
        "empty-key",
        "no-string",
        "clash",
        "clash-with-the-app",
        "unknown-table",
        "not-TOML",
        "not-UTF-8",
    ],
)
def test_a_bad_key_file_stops_start_up_with_one_line(tmp_path, monkeypatch, capsys, text, problem):
    path = keys_file(tmp_path, text)
    monkeypatch.setenv(KEYS_FILE_ENV, str(path))
    monkeypatch.setenv("ITSM_DB_URL", f"sqlite:///{tmp_path / 'never-opened.db'}")
    assert main([]) == 2
    assert capsys.readouterr().err == f"itsm: error: bad key file {path}: {problem}\n"
    assert not (tmp_path / "never-opened.db").exists()  # stopped before the database was opened


def test_a_key_file_named_by_the_environment_must_exist(tmp_path, monkeypatch, capsys):
    path = tmp_path / "nowhere.toml"
    monkeypatch.setenv(KEYS_FILE_ENV, str(path))
    assert main([]) == 2
    assert capsys.readouterr().err == (
        f"itsm: error: bad key file {path}: (file): file is missing (named by {KEYS_FILE_ENV})\n"
    )


# --------------------------------------------------------------------------- the console


async def test_a_remapped_and_an_unbound_key_in_the_keys_help_footer_and_palette(
    staff_sqlite, config, tmp_path
):
    db, staff = staff_sqlite
    keys = load(binding_table, keys_file(tmp_path, QUEUE_KEYS))
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False, keys=keys)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue")
        screen = app.screen
        assert screen.query_state.view == "my_work"
        await pilot.press("v")  # the old key does nothing now
        await settle(pilot)
        assert screen.query_state.view == "my_work"
        await pilot.press("w")
        await settle(pilot)
        assert screen.query_state.view == "unassigned"  # the view after my_work
        assert "[1-7/w] views" in str(screen.query_one("#queue-bar").render())  # the bar's hint follows
        await pilot.press("n")  # unbound: no new-ticket form
        await settle(pilot)
        assert app.screen is screen and not isinstance(app.screen, NewTicketForm)

        footer = footer_keys(app)
        assert ("w", "View") in footer and ("v", "View") not in footer
        assert "New" not in [description for _, description in footer]
        assert ("t", "Take") in footer  # the others keep their keys

        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        rows = app.screen.rows()
        assert ("w", "View") in rows and ("v", "View") not in rows
        assert "New" not in [description for _, description in rows]
        assert ("t", "Take") in rows
        assert f"Your keys are read from {tmp_path / 'keys.toml'}." in "\n".join(
            str(static.render()) for static in app.screen.query("Static")
        )
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, "the queue again")

        entries = await palette_entries(app, pilot)
        names = [name for name, _ in entries]
        # The queue's own actions come first, in the order of its keys; Textual's own commands last.
        assert names[:2] == ["Open", "Take"]
        assert names.index("Go to Queue") > names.index("Reverse")
        assert names.index("Theme") > names.index("Help: keys")
        helps = dict(entries)
        assert helps["View"] == "this screen; key w"
        assert helps["New"] == "this screen; no key"  # unbound, but still there to be chosen
        assert helps["Go to KPI board"] == "switch to the kpi board screen; key f4"


async def palette_on_the_ticket(db, config, actor, ticket_id: int) -> list[str]:
    app = ItsmApp(db, config, actor, run_scheduler=False)
    async with app.run_test(size=SIZE) as pilot:
        app.open_ticket(ticket_id)
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, TicketScreen) and app.screen.detail is not None,
            "the ticket",
        )
        return [name for name, _ in await palette_entries(app, pilot)]


async def test_the_palette_offers_only_what_the_role_may_take(staff_sqlite, config):
    db, staff = staff_sqlite
    with db.session() as s:
        ticket_id = tickets.create_ticket(
            s, config, staff["lead"], title="Printer jammed", requester="Rita"
        ).id
    agent = await palette_on_the_ticket(db, config, staff["agent1"], ticket_id)
    analyst = await palette_on_the_ticket(db, config, staff["analyst1"], ticket_id)
    # A new ticket of SD-L1 (the ticket's guards): its agent may take it, reply and note, but only a shift
    # lead assigns, and a new ticket is not resolved; an analyst only reads. The palette leaves out what the
    # footer strikes through, and lists the ticket's actions before the screens.
    for action in ("Take", "Escalate", "Tell shift lead", "Status", "Reply", "Note", "Edit", "Link"):
        assert action in agent and action not in analyst, action
    for action in ("Assign", "Resolve", "Reopen", "Rate"):
        assert action not in agent and action not in analyst, action
    for action in ("KEDB search", "Why SLA times", "Reload", "Back"):
        assert agent.index(action) < agent.index("Go to Queue"), action
        assert analyst.index(action) < analyst.index("Go to Queue"), action


# --------------------------------------------------------------------------- the README


def readme_section() -> str:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    start = text.index("### Keys of your own")
    return text[start : text.index("\n## ", start)]


def test_the_readme_example_loads(tmp_path):
    section = readme_section()
    example = section[section.index("```toml\n") + 8 : section.index("```\n", section.index("```toml"))]
    keys = load(binding_table, keys_file(tmp_path, example))
    assert dict(keys.remapped) == {"queue.take": "T", "go.kpi": "f4,ctrl+k"}
    assert keys.unbound == {"ticket.note"}


def test_the_readme_lists_every_binding_id():
    """Each row of the table names ids in full (``go.kpi``) or as a prefix (``queue.``) and the rest."""
    table = binding_table()
    groups = {binding_id.partition(".")[0] for binding_id in table.ids()}
    listed: set[str] = set()
    for line in readme_section().splitlines():
        if not line.startswith("| ") or "`" not in line:
            continue
        prefix = ""
        for token in line.split("|")[2].split("`")[1::2]:  # the second column
            if token.endswith("."):
                prefix = token
            elif token.partition(".")[0] in groups and "." in token:
                listed.add(token)
            else:
                listed.add(prefix + token)
    assert listed == set(table.ids())
