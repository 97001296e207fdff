"""Configuration loading: the shipped files load; every broken rule names the file, the key and the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from itsm_tui.config import CONFIG_FILES, ConfigError, load_config, shipped_config_dir


def edit(directory: Path, name: str, old: str, new: str) -> Path:
    """Replace one exact piece of text in a copied file (it must be there, once)."""
    path = directory / name
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} should occur once in {name}"
    path.write_text(text.replace(old, new))
    return path


def assert_config_error(directory: Path, file: str, key: str, *rule_parts: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    error = info.value
    assert Path(error.path) == directory / file
    assert error.key == key
    for part in rule_parts:
        assert part in error.rule
    message = str(error)
    assert str(directory / file) in message and key in message and error.rule in message
    return error


# --------------------------------------------------------------------------- the shipped files


def test_shipped_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ITSM_CONFIG_DIR", raising=False)
    config = load_config()
    assert config.priority_for("high", "high") == 1
    assert config.priority_for("low", "low") == 5
    assert set(config.policies) == {1, 2, 3, 4, 5}
    assert {"24x7", "office"} <= set(config.calendars)
    assert config.calendars["24x7"].always_open
    assert config.calendars["office"].timezone == "Europe/Berlin"
    assert "SD-L1" in config.groups and config.groups["SD-L1"].level == 1
    assert config.services["network"].support_group == "NET-L2"
    assert config.service_for_ci("vpn-gw-01").code == "vpn"
    assert "fixed" in config.resolution_codes
    for activity in config.raci.values():
        assert len(activity.roles_with("A")) == 1
        assert activity.roles_with("R")
    assert all(path.parent == shipped_config_dir() for path in config.sources.values())


def test_raci_roles(config) -> None:
    assert config.raci_roles("sla_breach", "A") == ["shift_lead"]
    assert set(config.raci_roles("sla_breach", "R")) == {"agent", "support_l2"}
    assert config.raci_roles("sla_breach", "I") == ["process_manager"]


def test_raci_roles_unknown_activity_names_known_ones(config) -> None:
    with pytest.raises(KeyError) as info:
        config.raci_roles("make_coffee", "A")
    message = str(info.value)
    assert "make_coffee" in message
    assert "sla_breach" in message and "change_approval" in message


def test_raci_roles_bad_letter(config) -> None:
    with pytest.raises(ValueError, match="R, A, C, I"):
        config.raci_roles("sla_breach", "X")


# --------------------------------------------------------------------------- RACI


def test_raci_two_accountables(conf_dir: Path) -> None:
    edit(
        conf_dir,
        "raci.toml",
        'agent = "R"\nshift_lead = "A"\nsupport_l2 = "I"',
        'agent = "R"\nshift_lead = "A"\nsupport_l2 = "A"',
    )
    error = assert_config_error(
        conf_dir, "raci.toml", "activities.log_and_classify", "exactly one Accountable", "found 2"
    )
    assert "shift_lead" in error.rule and "support_l2" in error.rule


def test_raci_no_accountable(conf_dir: Path) -> None:
    edit(
        conf_dir, "raci.toml", 'analyst = "R"\nprocess_manager = "A"', 'analyst = "R"\nprocess_manager = "C"'
    )
    assert_config_error(conf_dir, "raci.toml", "activities.kpi_reporting", "exactly one Accountable", "none")


def test_raci_no_responsible(conf_dir: Path) -> None:
    edit(
        conf_dir,
        "raci.toml",
        'agent = "R"\nsupport_l2 = "R"\nshift_lead = "A"\n\n[activities.sla_breach]',
        'agent = "C"\nsupport_l2 = "I"\nshift_lead = "A"\n\n[activities.sla_breach]',
    )
    assert_config_error(conf_dir, "raci.toml", "activities.sla_warning", "at least one Responsible")


def test_raci_unknown_role(conf_dir: Path) -> None:
    edit(conf_dir, "raci.toml", 'analyst = "R"\nprocess_manager = "A"', 'analyst = "R"\nwizard = "A"')
    error = assert_config_error(conf_dir, "raci.toml", "activities.kpi_reporting.wizard", "unknown role")
    assert "shift_lead" in error.rule  # the known roles are listed


def test_raci_bad_letter(conf_dir: Path) -> None:
    edit(
        conf_dir, "raci.toml", 'analyst = "R"\nprocess_manager = "A"', 'analyst = "X"\nprocess_manager = "A"'
    )
    assert_config_error(conf_dir, "raci.toml", "activities.kpi_reporting.analyst", "'X'", "R, A, C, I")


# --------------------------------------------------------------------------- priority and SLA


def test_priority_without_policy(conf_dir: Path) -> None:
    edit(
        conf_dir,
        "sla.toml",
        '[policies.P5]\ncalendar = "office"\nresponse_minutes = 960\nresolution_minutes = 4800',
        "",
    )
    assert_config_error(conf_dir, "priority.toml", "matrix", "P5", "[policies.P5]", "sla.toml")


def test_policy_with_unknown_calendar(conf_dir: Path) -> None:
    edit(conf_dir, "sla.toml", '[policies.P3]\ncalendar = "office"', '[policies.P3]\ncalendar = "moon"')
    error = assert_config_error(conf_dir, "sla.toml", "policies.P3.calendar", "unknown calendar 'moon'")
    assert "office" in error.rule and "24x7" in error.rule


def test_matrix_missing_urgency(conf_dir: Path) -> None:
    edit(
        conf_dir,
        "priority.toml",
        "[matrix.medium]\nhigh = 2\nmedium = 3\nlow = 4",
        "[matrix.medium]\nhigh = 2\nmedium = 3",
    )
    assert_config_error(conf_dir, "priority.toml", "matrix.medium.low", "missing", "every urgency")


@pytest.mark.parametrize("value", ["0", "6", "9"])
def test_priority_out_of_range(conf_dir: Path, value: str) -> None:
    edit(conf_dir, "priority.toml", "[matrix.high]\nhigh = 1", f"[matrix.high]\nhigh = {value}")
    assert_config_error(conf_dir, "priority.toml", "matrix.high.high", "between 1 and 5", value)


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_bad_toml_syntax(conf_dir: Path, name: str) -> None:
    path = conf_dir / name
    path.write_text(path.read_text() + "\n[unclosed\nkey = = 1\n")
    assert_config_error(conf_dir, name, "(syntax)", "not valid TOML")


# --------------------------------------------------------------------------- calendars


def test_unknown_time_zone(conf_dir: Path) -> None:
    edit(conf_dir, "calendars.toml", 'timezone = "Europe/Berlin"', 'timezone = "Mars/Olympus_Mons"')
    assert_config_error(
        conf_dir, "calendars.toml", "calendars.office.timezone", "unknown time zone", "Mars/Olympus_Mons"
    )


def test_hours_without_minutes(conf_dir: Path) -> None:
    edit(conf_dir, "calendars.toml", 'tue = ["08:00-18:00"]', 'tue = ["8-18"]')
    assert_config_error(conf_dir, "calendars.toml", "calendars.office.hours.tue", "'8-18'", "HH:MM-HH:MM")


def test_hours_end_before_start(conf_dir: Path) -> None:
    edit(conf_dir, "calendars.toml", 'wed = ["08:00-18:00"]', 'wed = ["18:00-08:00"]')
    assert_config_error(
        conf_dir, "calendars.toml", "calendars.office.hours.wed", "end must be after the start"
    )


def test_hours_not_a_time_of_day(conf_dir: Path) -> None:
    edit(conf_dir, "calendars.toml", 'wed = ["08:00-18:00"]', 'wed = ["08:00-25:00"]')
    assert_config_error(conf_dir, "calendars.toml", "calendars.office.hours.wed", "not a time of day")


def test_hours_overlap(conf_dir: Path) -> None:
    edit(conf_dir, "calendars.toml", 'wed = ["08:00-18:00"]', 'wed = ["08:00-12:00", "11:00-18:00"]')
    assert_config_error(conf_dir, "calendars.toml", "calendars.office.hours.wed", "overlap")


def test_unknown_weekday(conf_dir: Path) -> None:
    edit(conf_dir, "calendars.toml", 'thu = ["08:00-18:00"]', 'thursday = ["08:00-18:00"]')
    error = assert_config_error(
        conf_dir, "calendars.toml", "calendars.office.hours.thursday", "unknown weekday"
    )
    assert "mon" in error.rule and "sun" in error.rule


def test_bad_holiday(conf_dir: Path) -> None:
    edit(conf_dir, "calendars.toml", '"2026-12-24", ', '"24.12.2026", ')
    assert_config_error(conf_dir, "calendars.toml", "calendars.office.holidays", "'24.12.2026'", "YYYY-MM-DD")


# --------------------------------------------------------------------------- catalog


def test_service_with_unknown_support_group(conf_dir: Path) -> None:
    edit(
        conf_dir,
        "catalog.toml",
        'code = "crm"\nname = "CRM"\nsupport_group = "APP-L2"',
        'code = "crm"\nname = "CRM"\nsupport_group = "SALES-L2"',
    )
    error = assert_config_error(
        conf_dir, "catalog.toml", "services[4].support_group", "unknown group 'SALES-L2'"
    )
    assert "SD-L1" in error.rule and "APP-L2" in error.rule


def test_duplicate_ci(conf_dir: Path) -> None:
    edit(conf_dir, "catalog.toml", 'cis = ["vpn-gw-01", "vpn-gw-02"]', 'cis = ["vpn-gw-01", "core-sw-02"]')
    assert_config_error(conf_dir, "catalog.toml", "services[2].cis", "'core-sw-02'", "'network'")


def test_duplicate_group(conf_dir: Path) -> None:
    edit(conf_dir, "catalog.toml", 'code = "ENG-L3"', 'code = "APP-L2"')
    assert_config_error(conf_dir, "catalog.toml", "groups[3].code", "defined twice")


# --------------------------------------------------------------------------- override directory


def test_override_dir_with_one_file_uses_shipped_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    override = tmp_path / "override"
    override.mkdir()
    text = (shipped_config_dir() / "sla.toml").read_text()
    assert "warning_ratio = 0.75" in text
    (override / "sla.toml").write_text(text.replace("warning_ratio = 0.75", "warning_ratio = 0.5"))
    monkeypatch.setenv("ITSM_CONFIG_DIR", str(override))
    config = load_config()
    assert config.warning_ratio == 0.5
    assert config.sources["sla.toml"] == override / "sla.toml"
    for name in CONFIG_FILES:
        if name != "sla.toml":
            assert config.sources[name] == shipped_config_dir() / name
    assert config.raci_roles("sla_breach", "A") == ["shift_lead"]
    assert config.priority_for("medium", "medium") == 3


def test_override_dir_broken_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    override = tmp_path / "override"
    override.mkdir()
    (override / "raci.toml").write_text('[activities.triage]\nagent = "R"\n')
    monkeypatch.setenv("ITSM_CONFIG_DIR", str(override))
    with pytest.raises(ConfigError) as info:
        load_config()
    assert info.value.path == str(override / "raci.toml")
    assert info.value.key == "activities.triage"


def test_override_dir_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITSM_CONFIG_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError) as info:
        load_config()
    assert info.value.key == "ITSM_CONFIG_DIR"


# --------------------------------------------------------------------------- command line


def test_cli_stops_on_broken_config(
    conf_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from itsm_tui.cli import main

    edit(
        conf_dir,
        "raci.toml",
        'agent = "R"\nshift_lead = "A"\nsupport_l2 = "I"',
        'agent = "R"\nshift_lead = "A"\nsupport_l2 = "A"',
    )
    monkeypatch.setenv("ITSM_CONFIG_DIR", str(conf_dir))
    database = tmp_path / "cli.db"
    code = main(["ticket", "list", "--db", f"sqlite:///{database}"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert str(conf_dir / "raci.toml") in captured.err
    assert "activities.log_and_classify" in captured.err
    assert "exactly one Accountable" in captured.err
    assert not database.exists()  # start-up stopped before touching the database
