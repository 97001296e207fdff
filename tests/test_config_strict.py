"""A configuration mistake stops start-up: misspelt keys, a file that is not UTF-8, a broken override."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from itsm_tui.config import CONFIG_FILES, ConfigError, load_config, shipped_config_dir

# (file, text in the shipped file, its misspelling, the key refused, the rule), every rule worked out by hand
# from the keys each table knows.
MISSPELT = [
    (
        "priority.toml",
        "[matrix.high]",
        "matrixx = 1\n[matrix.high]",
        "matrixx",
        "unknown key; the file's top level knows matrix (did you mean 'matrix'?)",
    ),
    (
        "sla.toml",
        "auto_close_days = 5",
        "auto_close_day = 5",
        "auto_close_day",
        "unknown key; the file's top level knows warning_ratio, scan_interval_seconds, auto_close_days, "
        "reopen_restarts_resolution, major_incident_priorities, on_shift_minutes, jobs_in_consoles, "
        "policies, escalations (did you mean 'auto_close_days'?)",
    ),
    (
        "sla.toml",
        "response_minutes = 15",
        "respons_minutes = 15",
        "policies.P1.respons_minutes",
        "unknown key; [policies.P1] knows calendar, response_minutes, resolution_minutes "
        "(did you mean 'response_minutes'?)",
    ),
    (
        "sla.toml",
        'from_level = 1\nto = "service"\n\n[[escalations]]',
        'from_levl = 1\nto = "service"\n\n[[escalations]]',
        "escalations[0].from_levl",
        "unknown key; [escalations[0]] knows event, target, priorities, from_level, to "
        "(did you mean 'from_level'?)",
    ),
    (
        "calendars.toml",
        'timezone = "Europe/Berlin"',
        'time_zone = "Europe/Berlin"',
        "calendars.office.time_zone",
        "unknown key; [calendars.office] knows timezone, always_open, hours, holidays, country "
        "(did you mean 'timezone'?)",
    ),
    (
        "raci.toml",
        "[activities.log_and_classify]",
        'activites = "x"\n[activities.log_and_classify]',
        "activites",
        "unknown key; the file's top level knows activities (did you mean 'activities'?)",
    ),
    (
        "catalog.toml",
        'support_group = "NET-L2"\ncis = ["vpn-gw-01", "vpn-gw-02"]',
        'support_group = "NET-L2"\nci = ["vpn-gw-01", "vpn-gw-02"]',
        "services[2].ci",
        "unknown key; [services[2]] knows code, name, support_group, cis (did you mean 'cis'?)",
    ),
    (
        "catalog.toml",
        'name = "Service Desk L1"\nlevel = 1',
        'name = "Service Desk L1"\nlevel = 1\nlevle = 2',
        "groups[0].levle",
        "unknown key; [groups[0]] knows code, name, level (did you mean 'level'?)",
    ),
    (
        "catalog.toml",
        "\nrequest = [",
        "\nrequests = [",
        "categories.requests",
        "unknown key; [categories] knows incident, request (did you mean 'request'?)",
    ),
    (
        "catalog.toml",
        "codes = [",
        "code = [",
        "resolution_codes.code",
        "unknown key; [resolution_codes] knows codes (did you mean 'codes'?)",
    ),
    (
        "kpi.toml",
        'better = "lower"\n\n[targets.reopen_rate]',
        'beter = "lower"\n\n[targets.reopen_rate]',
        "targets.mttr_hours.beter",
        "unknown key; [targets.mttr_hours] knows label, unit, target, amber, better (did you mean 'better'?)",
    ),
    (
        "changes.toml",
        'rule = "all"',
        'rules = "all"',
        "approval.rules",
        "unknown key; [approval] knows rule, quorum, assign_by_support_group, members, by_risk "
        "(did you mean 'rule'?)",
    ),
    (
        "changes.toml",
        "lead_time_hours = 24",
        "lead_time_hour = 24",
        "reminders.lead_time_hour",
        "unknown key; [reminders] knows lead_time_hours, review_due_days, conflict_horizon_days, "
        "interval_seconds (did you mean 'lead_time_hours'?)",
    ),
    (
        "changes.toml",
        "duration_minutes = 60",
        "duration_minute = 60",
        "templates[1].duration_minute",
        "unknown key; [templates[1]] knows code, title, risk, services, duration_minutes, "
        "implementation_plan, backout_plan, test_plan (did you mean 'duration_minutes'?)",
    ),
    (
        "changes.toml",
        "[reminders]",
        "[reminder]\n[reminders]",
        "reminder",
        "unknown key; the file's top level knows approval, emergency, implementation, reminders, templates, "
        "risk, cab, conflicts, impact, slots (did you mean 'reminders'?)",
    ),
]


@pytest.mark.parametrize(("name", "old", "new", "key", "rule"), MISSPELT, ids=[m[3] for m in MISSPELT])
def test_a_misspelt_key_is_refused_with_the_nearest_known_key(conf_dir, name, old, new, key, rule):
    path = conf_dir / name
    body = path.read_text(encoding="utf-8")
    assert body.count(old) == 1
    path.write_text(body.replace(old, new), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(conf_dir)
    assert (Path(info.value.path), info.value.key, info.value.rule) == (path, key, rule)


def test_an_unknown_key_far_from_every_known_one_lists_the_known_keys_without_a_guess(conf_dir):
    path = conf_dir / "sla.toml"
    path.write_text(path.read_text(encoding="utf-8") + "\n[policies.P5.xyzzy]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(conf_dir)
    assert info.value.key == "policies.P5.xyzzy"
    assert (
        info.value.rule == "unknown key; [policies.P5] knows calendar, response_minutes, resolution_minutes"
    )


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("false", False), ('"no"', None), ("0", None)]
)
def test_jobs_in_consoles_is_true_or_false(conf_dir, value, expected):
    path = conf_dir / "sla.toml"
    body = path.read_text(encoding="utf-8")
    assert body.count("jobs_in_consoles = true") == 1
    path.write_text(body.replace("jobs_in_consoles = true", f"jobs_in_consoles = {value}"), encoding="utf-8")
    if expected is None:
        with pytest.raises(ConfigError) as info:
            load_config(conf_dir)
        assert (info.value.key, info.value.rule) == ("jobs_in_consoles", "must be true or false")
    else:
        assert load_config(conf_dir).jobs_in_consoles is expected


def test_a_file_that_is_not_utf8_is_refused_with_where_the_bad_byte_is(conf_dir):
    path = conf_dir / "catalog.toml"
    body = path.read_text(encoding="utf-8").replace("Corporate Network", "Réseau")
    path.write_bytes(body.encode("latin-1"))
    offset = body.encode("latin-1").index(b"\xe9")  # byte offset of the é, counted from 0
    line = body[: body.index("é")].count("\n") + 1
    # The shipped catalog: "Corporate Network" is the name of the second service, on line 32.
    assert line == 32
    with pytest.raises(ConfigError) as info:
        load_config(conf_dir)
    assert (Path(info.value.path), info.value.key) == (path, "(encoding)")
    assert info.value.rule == f"not UTF-8 (byte {offset + 1}, line 32); save the file as UTF-8"


def test_an_override_that_is_a_dangling_symbolic_link_is_refused_not_skipped(conf_dir):
    path = conf_dir / "kpi.toml"
    path.unlink()
    path.symlink_to(conf_dir / "nowhere.toml")
    with pytest.raises(ConfigError) as info:
        load_config(conf_dir)
    assert (Path(info.value.path), info.value.key) == (path, "(file)")
    assert info.value.rule == f"is a symbolic link to {conf_dir / 'nowhere.toml'}, which does not exist"


def test_an_override_that_is_a_directory_is_refused_not_skipped(conf_dir):
    path = conf_dir / "raci.toml"
    path.unlink()
    path.mkdir()
    with pytest.raises(ConfigError) as info:
        load_config(conf_dir)
    assert (Path(info.value.path), info.value.key, info.value.rule) == (
        path,
        "(file)",
        "is a directory; it must be a TOML file",
    )


def test_an_override_that_is_a_named_pipe_is_refused_without_blocking_start_up(conf_dir):
    path = conf_dir / "changes.toml"
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(ConfigError) as info:
        load_config(conf_dir)
    assert (Path(info.value.path), info.value.key, info.value.rule) == (
        path,
        "(file)",
        "is not a regular file; it must be a TOML file",
    )


def test_an_override_directory_with_only_some_files_still_takes_the_rest_from_the_shipped_ones(tmp_path):
    (tmp_path / "kpi.toml").write_text(
        '[targets.fcr]\nlabel = "FCR"\nunit = "%"\ntarget = 60.0\namber = 50.0\n', encoding="utf-8"
    )
    config = load_config(tmp_path)
    assert config.sources["kpi.toml"] == tmp_path / "kpi.toml"
    assert config.sources["sla.toml"] == shipped_config_dir() / "sla.toml"
    assert list(config.kpi_targets) == ["fcr"] and config.kpi_targets["fcr"].target == 60.0


def test_the_shipped_files_still_load(monkeypatch):
    monkeypatch.delenv("ITSM_CONFIG_DIR", raising=False)
    config = load_config()
    assert set(config.sources) == set(CONFIG_FILES)
    assert all(path.parent == shipped_config_dir() for path in config.sources.values())
    assert len(config.services) == 8 and len(config.groups) == 4 and config.changes.early_start_minutes == 15


def test_the_cli_prints_the_file_key_and_rule_and_exits_2_without_a_traceback(conf_dir, tmp_path):
    path = conf_dir / "sla.toml"
    body = path.read_text(encoding="utf-8")
    path.write_text(body.replace("on_shift_minutes = 60", "on_shift_minute = 60"), encoding="utf-8")
    env = {**os.environ, "ITSM_CONFIG_DIR": str(conf_dir), "ITSM_DB_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    done = subprocess.run(
        [sys.executable, "-m", "itsm_tui.cli", "ticket", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    assert (
        f"itsm: error: bad configuration file {path}: key on_shift_minute: unknown key; "
        "the file's top level knows warning_ratio, scan_interval_seconds, auto_close_days, "
        "reopen_restarts_resolution, major_incident_priorities, on_shift_minutes, jobs_in_consoles, "
        "policies, escalations (did you mean 'on_shift_minutes'?)"
    ) in done.stderr
