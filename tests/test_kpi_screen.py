"""The KPI board driven with Pilot on a small SQLite demo at a fixed clock: tabs, periods, group, tiles
against the service's figures, and operational figures that open the queue on the tickets behind them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pilot_helpers import settle, wait_until
from sqlalchemy import func, select, true
from textual.widgets import Input, OptionList, TabbedContent

from itsm_tui.app import ItsmApp
from itsm_tui.models import Ticket
from itsm_tui.screens.kpi import KpiScreen, Tile, _value
from itsm_tui.screens.queue import QueueScreen
from itsm_tui.services import kpi, queue

FIXED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday noon, the end of the demo history
# (the demo user "deskuser" reads times in Europe/Berlin: 13:00)


@pytest.fixture
def demo(demo_copy):
    return demo_copy(1500, 3)


def make_app(db, config, actor) -> ItsmApp:
    return ItsmApp(db, config, actor, run_scheduler=False, clock=lambda: FIXED)


async def open_board(pilot, app: ItsmApp) -> KpiScreen:
    await pilot.press("f4")
    await wait_until(pilot, lambda: isinstance(app.screen, KpiScreen) and app.screen.loads >= 1, "the board")
    return app.screen


async def press_and_load(pilot, screen: KpiScreen, *keys: str) -> None:
    before = screen.loads
    await pilot.press(*keys)
    await wait_until(pilot, lambda: screen.loads > before, f"a load after {keys}")


def bar(screen) -> str:
    return str(screen.query_one("#kpi-bar").render())


def widget_text(widget) -> str:
    """What a widget shows, as plain lines."""
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


def service_report(db, config, period, group=None) -> kpi.KpiReport:
    with db.session() as s:
        return kpi.report(s, config, period, group)


def tiles(screen: KpiScreen) -> dict[str, tuple[str, Tile]]:
    """Each headline tile's text and widget by the KPI's label (the first line of the tile)."""
    out = {}
    for tile in screen.query(Tile):
        text = str(tile.render())
        out[text.splitlines()[0].strip()] = (text, tile)
    return out


def assert_tiles_match(screen: KpiScreen, report: kpi.KpiReport) -> None:
    """The tiles show the service's headline figures: value, target and RAG colour."""
    shown = tiles(screen)
    assert len(shown) == len(report.headline) == 7
    for figure in report.headline:
        text, tile = shown[figure.label]
        assert text.splitlines()[1].strip() == _value(figure.value, figure.unit), figure.name
        assert f"target {_value(figure.target, figure.unit)}" in text, figure.name
        assert tile.has_class(figure.status), figure.name


async def test_the_operational_tab_shows_the_live_snapshot_at_the_apps_clock(demo, config):
    db, actor = demo
    app = make_app(db, config, actor)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_board(pilot, app)
        tabbed = screen.query_one(TabbedContent)
        assert tabbed.active == "operational"
        assert bar(screen).startswith("Last 30 days (10-22 to 11-20 13:00)")
        assert "group: all" in bar(screen)

        # the operational figures are the live snapshot at the app's clock
        with db.read_session() as s:
            live = kpi.operational_snapshot(s, FIXED)
        figures = screen.query_one("#kpi-figures", OptionList)
        prompts = {
            figures.get_option_at_index(i).id: str(figures.get_option_at_index(i).prompt)
            for i in range(figures.option_count)
        }
        assert prompts["open"].split()[-1] == f"{live.open:,}"
        assert prompts["unassigned"].split()[-1] == f"{live.unassigned:,}"
        assert (
            prompts["breached"].startswith("Breaching now")
            and prompts["breached"].split()[-1] == f"{live.breached:,}"
        )
        assert prompts["soon"].split()[-1] == f"{live.breaching_within_hour:,}"
        first_agents = list(live.workload)[:8]
        assert [k for k in prompts if k.startswith("agent:")] == [f"agent:{a}" for a in first_agents]
        assert live.breached > 0 and live.workload


async def test_tabs_switch_by_key_and_show_the_services_figures(demo, config):
    db, actor = demo
    app = make_app(db, config, actor)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_board(pilot, app)
        tabbed = screen.query_one(TabbedContent)
        await pilot.press("s")
        await settle(pilot)
        assert tabbed.active == "strategic"
        assert_tiles_match(screen, service_report(db, config, kpi.period_for("30d", FIXED)))
        await pilot.press("n")
        await settle(pilot)
        assert tabbed.active == "management"
        month = service_report(db, config, kpi.period_for("30d", FIXED))
        summary = widget_text(screen.query_one("#kpi-summary"))
        assert f"{month.opened:,}" in summary and f"{month.resolved:,}" in summary
        assert _value(month.mtta_hours, "h") in summary
        await pilot.press("o")
        await settle(pilot)
        assert tabbed.active == "operational"


async def test_periods_are_named_in_the_bar_and_the_tiles_follow_them(demo, config):
    db, actor = demo
    app = make_app(db, config, actor)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_board(pilot, app)
        tabbed = screen.query_one(TabbedContent)
        # periods: the bar names each, the tiles give the service's figures for it
        await pilot.press("s")
        for key, name, label in (
            ("w", "7d", "Last 7 days (11-14 to 11-20 13:00)"),
            ("t", "today", "Today (11-20 to 11-20 13:00)"),
            ("q", "quarter", "This quarter (10-01 to 11-20 13:00)"),
            ("m", "30d", "Last 30 days (10-22 to 11-20 13:00)"),
        ):
            await press_and_load(pilot, screen, key)
            assert bar(screen).startswith(label), key
            assert screen.period_name == name
            assert_tiles_match(screen, service_report(db, config, kpi.period_for(name, FIXED)))
        assert tabbed.active == "strategic"  # the tab stays as the period changes


async def test_a_custom_period_then_a_group_then_a_named_period(demo, config):
    db, actor = demo
    app = make_app(db, config, actor)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_board(pilot, app)
        await pilot.press("s")
        # a custom period
        await pilot.press("c")
        await wait_until(pilot, lambda: app.screen.query("#period-from"), "the custom-period form")
        await pilot.press(*"2026-11-02", "tab", *"2026-11-08")
        before = screen.loads
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.loads > before, "the custom period")
        assert bar(screen).startswith("2026-11-02 to 2026-11-08 (11-02 to 11-09 01:00)")
        custom = kpi.custom_period(datetime(2026, 11, 2).date(), datetime(2026, 11, 8).date(), FIXED)
        assert_tiles_match(screen, service_report(db, config, custom))

        # the next group: the first level-1 group
        await press_and_load(pilot, screen, "g")
        assert "group: SD-L1" in bar(screen)
        assert_tiles_match(screen, service_report(db, config, custom, "SD-L1"))
        await press_and_load(pilot, screen, "w")  # a named period drops the custom one, keeps the group
        assert bar(screen).startswith("Last 7 days") and "group: SD-L1" in bar(screen)
        assert_tiles_match(screen, service_report(db, config, kpi.period_for("7d", FIXED), "SD-L1"))


async def select_figure(pilot, screen: KpiScreen, key: str) -> None:
    """Focus the operational list, move to the figure and press Enter."""
    await pilot.press("o")
    figures = screen.query_one("#kpi-figures", OptionList)
    figures.focus()
    await pilot.press("home")
    index = next(i for i in range(figures.option_count) if figures.get_option_at_index(i).id == key)
    for _ in range(index):
        await pilot.press("down")
    assert figures.highlighted_option.id == key
    await pilot.press("enter")


async def queue_showing(pilot, app: ItsmApp, text: str) -> QueueScreen:
    def ready() -> bool:
        screen = app.screen
        return (
            isinstance(screen, QueueScreen)
            and screen.query_one("#queue-filter", Input).value == text
            and screen.query_state is not None
            and screen.query_state.filter == queue.parse_filter(text, app.actor)
            and screen.table.window is not None
            and screen.up_to_date
        )

    await wait_until(pilot, ready, f"the queue filtered by {text}")
    return app.screen


def all_rows(db, screen: QueueScreen) -> list[queue.QueueRow]:
    with db.read_session() as s:
        return queue.fetch_page(s, screen.query_state, limit=100_000)


async def test_breaching_now_opens_the_queue_on_the_overdue_tickets(demo, config):
    db, actor = demo
    app = make_app(db, config, actor)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_board(pilot, app)
        with db.read_session() as s:
            breached = kpi.operational_snapshot(s, FIXED).breached
            overdue = s.scalar(
                select(func.count()).where(
                    Ticket.is_open == true(), Ticket.paused_at.is_(None), Ticket.resolution_due_at < FIXED
                )
            )
        assert breached == overdue > 0
        await select_figure(pilot, screen, "breached")
        qs = await queue_showing(pilot, app, "sla:breached")
        assert qs.query_state.view == "all_open" and qs.query_state.filter.sla == ("breached",)
        assert qs.table.total == breached
        assert f"({breached:,})" in str(qs.query_one("#queue-bar").render())
        shown = [qs.table.window.row(i) for i in range(min(qs.table.total, 20))]
        rows = all_rows(db, qs)
        assert len(rows) == breached
        for row in [*shown, *rows]:
            assert row.resolution_due_at < FIXED and row.paused_at is None and row.resolved_at is None
            assert row.sla_state(FIXED) == "breached"


async def test_an_agents_workload_opens_the_queue_on_their_tickets(demo, config):
    db, actor = demo
    app = make_app(db, config, actor)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_board(pilot, app)
        with db.read_session() as s:
            workload = kpi.operational_snapshot(s, FIXED).workload
        login, count = next(iter(workload.items()))
        await select_figure(pilot, screen, f"agent:{login}")
        qs = await queue_showing(pilot, app, f"assignee:{login}")
        assert qs.query_state.filter.assignees == (login,)
        assert qs.table.total == count
        rows = all_rows(db, qs)
        assert len(rows) == count and {r.assignee for r in rows} == {login}

        # back to the board (it keeps its state), then the second agent
        await pilot.press("f4")
        await wait_until(pilot, lambda: app.screen is screen, "the board again")
        second, second_count = list(workload.items())[1]
        await select_figure(pilot, screen, f"agent:{second}")
        qs = await queue_showing(pilot, app, f"assignee:{second}")
        assert qs.table.total == second_count
        assert {r.assignee for r in all_rows(db, qs)} == {second}


async def test_the_board_of_an_empty_desk(staff_sqlite, config):
    db, actors = staff_sqlite
    app = make_app(db, config, actors["lead"])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_board(pilot, app)
        assert bar(screen).startswith("Last 30 days")
        await pilot.press("s")
        await settle(pilot)
        shown = tiles(screen)
        assert len(shown) == 7
        assert all(text.splitlines()[1].strip() == "-" for text, _ in shown.values())
        assert {t.border_title for t in screen.query(Tile)} == {"NO DATA"}
        figures = screen.query_one("#kpi-figures", OptionList)
        assert figures.option_count == 4  # no agent has work
        await press_and_load(pilot, screen, "t")
        assert bar(screen).startswith("Today")
