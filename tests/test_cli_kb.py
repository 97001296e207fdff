"""``itsm kb ...`` on SQLite and PostgreSQL: an article from a ticket through review to publication with
--json, the text from a file, standard input or $EDITOR, refusals and bad input as one line with exit 2."""

from __future__ import annotations

import io
import json

from access_helpers import run_as, snapshot
from sqlalchemy import update

from itsm_tui.cli import kb as kb_cli
from itsm_tui.models import Ticket
from itsm_tui.services import tickets


def test_an_article_from_a_ticket_to_publication(db, config, staff, monkeypatch, capsys, tmp_path):
    with db.session() as s:
        ticket = tickets.create_ticket(
            s, config, staff["agent1"], title="VPN drops hourly", requester="Pat", description="It drops."
        ).ref
        s.execute(update(Ticket).where(Ticket.ref == ticket).values(status="resolved"))  # its resolution

    def kb(login: str, *argv: str) -> tuple[int, str, str]:
        return run_as(monkeypatch, capsys, login, "kb", *argv, "--db", db.url)

    monkeypatch.setattr("sys.stdin", io.StringIO("Set the rekey interval to 8h.\n"))
    code, out, err = kb("agent1", "create", "--from-ticket", ticket.lower(), "--body-file", "-", "--json")
    assert code == 0, err
    made = json.loads(out)
    assert (made["ref"], made["status"], made["version"], made["author"]) == (
        "KB0000001",
        "draft",
        1,
        "agent1",
    )
    assert (made["title"], made["body"], made["source_ticket"], made["uses"]) == (
        "VPN drops hourly",
        "Set the rekey interval to 8h.",
        ticket,
        1,
    )
    assert made["actions"]["submit"] is None and made["actions"]["publish"].startswith("KB0000001 cannot go")

    text = tmp_path / "text.md"
    text.write_text("Set the rekey interval to 8 hours.", encoding="utf-8")
    assert kb(
        "agent1", "update", "kb1", "--body-file", str(text), "--service", "vpn", "--category", "Remote"
    )[:2] == (0, "KB0000001 draft v2: VPN drops hourly\n")
    assert kb("agent1", "submit", "KB0000001")[:2] == (0, "KB0000001 in review v3: VPN drops hourly\n")

    # Refused: one line, exit 2, nothing written.
    before = snapshot(db)
    for login, argv, said in (
        ("agent1", ("publish", "KB1"), "itsm: error: You may not publish knowledge: it needs the role"),
        (
            "net1",
            ("publish", "KB1", "--expected-version", "2"),
            "itsm: error: KB0000001 was changed by Agent1",
        ),
        (
            "net1",
            ("retire", "KB1", "--reason", "x"),
            "itsm: error: KB0000001 cannot go from in_review to retired",
        ),
        ("net1", ("send-back", "KB1", "--note", " "), "itsm: error: note: say why it goes back"),
        (
            "agent1",
            ("create", "--title", "x", "--service", "telepathy"),
            "itsm: error: service: unknown service",
        ),
        ("agent1", ("create", "--title", "x", "--body", "a", "--body-file", "b"), "itsm: error: give either"),
        (
            "agent1",
            ("create", "--title", "x", "--body-file", str(tmp_path / "none")),
            "itsm: error: cannot read",
        ),
        ("agent1", ("update", "KB1"), "itsm: error: nothing to change"),
        ("agent1", ("list", "status:lost"), "itsm: error: filter: no article status 'lost'"),
        ("agent1", ("show", "KB9"), "itsm: error: no knowledge article 'KB9'"),
    ):
        code, out, err = kb(login, *argv)
        assert (code, out) == (2, ""), (argv, err)
        assert err.startswith(said) and err.count("\n") == 1, (argv, err)
    assert snapshot(db) == before

    code, out, err = kb("net1", "publish", "KB1", "--expected-version", "3", "--json")
    assert code == 0, err
    published = json.loads(out)
    assert (published["status"], published["reviewer"], published["version"]) == ("published", "net1", 4)

    code, out, _ = kb("agent2", "list", "svc:vpn", "--json")
    assert [(r["ref"], r["status"], r["uses"], r["author"]) for r in json.loads(out)] == [
        ("KB0000001", "published", 1, "agent1")
    ]
    code, out, _ = kb("agent2", "list", "--view", "drafts")
    assert out == "(none)\n"
    code, out, _ = kb("agent2", "show", "KB1")
    assert code == 0
    assert out.startswith("KB0000001  published  v4  used by 1 ticket(s)\n  VPN drops hourly\n")
    assert "  Published by: net1\n" in out and f"  From ticket:  {ticket}\n" in out
    assert "\nSet the rekey interval to 8 hours.\n" in out
    assert "  retire     no: You may not publish knowledge" in out


def test_update_alone_opens_the_editor_at_a_terminal(db, config, staff, monkeypatch, capsys, tmp_path):
    code, _, err = run_as(monkeypatch, capsys, "agent1", "kb", "create", "--title", "Printer", "--db", db.url)
    assert code == 0, err
    seen = tmp_path / "seen.txt"
    monkeypatch.setattr(kb_cli, "_at_a_terminal", lambda: True)
    # The editor keeps what it was given (the stored text) and writes the new text.
    monkeypatch.setenv("VISUAL", f'sh -c \'cat "$1" > {seen}; printf "Turn it off and on." > "$1"\' sh')
    code, out, err = run_as(monkeypatch, capsys, "agent1", "kb", "update", "KB1", "--json", "--db", db.url)
    assert code == 0, err
    assert (json.loads(out)["body"], json.loads(out)["version"]) == ("Turn it off and on.", 2)
    assert seen.read_text() == ""
    monkeypatch.setenv("VISUAL", "false")
    code, out, err = run_as(monkeypatch, capsys, "agent1", "kb", "update", "KB1", "--db", db.url)
    assert (code, out, err) == (
        2,
        "",
        "itsm: error: the editor 'false' ended with exit status 1; nothing was saved\n",
    )
