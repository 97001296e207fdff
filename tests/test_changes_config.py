"""changes.toml: the shipped file loads, and every broken rule names the file, the key and the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from itsm_tui.config import ConfigError, load_config, shipped_config_dir


def edit(directory: Path, old: str, new: str) -> None:
    path = directory / "changes.toml"
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} should occur once"
    path.write_text(text.replace(old, new))


def test_the_shipped_file_loads(monkeypatch):
    monkeypatch.delenv("ITSM_CONFIG_DIR", raising=False)
    policy = load_config().changes
    assert policy.rule == "all" and policy.quorum == 2 and policy.assign_by_support_group
    assert policy.lead_time_hours == 24 and policy.review_due_days == 5
    template = policy.templates["std-patch"]  # the demo's standard changes use it
    assert template.risk == "low" and "network" in template.services and template.duration_minutes == 240


def test_members_and_quorum_are_read(conf_dir):
    edit(conf_dir, 'rule = "all"', 'rule = "quorum"')
    edit(conf_dir, '# erp = ["qerp"]', 'erp = ["qerp", "papps"]')
    policy = load_config(conf_dir).changes
    assert policy.rule == "quorum" and policy.members == {"erp": ("qerp", "papps")}


@pytest.mark.parametrize(
    ("old", "new", "key", "rule"),
    [
        ('rule = "all"', 'rule = "most"', "approval.rule", 'must be "all" or "quorum"'),
        ("quorum = 2", "quorum = 0", "approval.quorum", "between 1 and 50"),
        (
            "assign_by_support_group = true",
            'assign_by_support_group = "yes"',
            "approval.assign_by_support_group",
            "true or false",
        ),
        ('# erp = ["qerp"]', 'mainframe = ["x"]', "approval.members.mainframe", "unknown service"),
        ('# erp = ["qerp"]', 'erp = "qerp"', "approval.members.erp", "list of logins"),
        ("lead_time_hours = 24", "lead_time_hours = 0", "reminders.lead_time_hours", "between 1 and 720"),
        ("interval_seconds = 300", "interval_seconds = 1", "reminders.interval_seconds", "between 10"),
        ('code = "std-cert-renewal"', 'code = "std-patch"', "templates[1].code", "defined twice"),
        ('code = "std-cert-renewal"', 'code = "Std Cert"', "templates[1].code", "lower-case code"),
        ('title = "Extend a file share quota"', 'title = ""', "templates[2].title", "non-empty"),
        (
            'risk = "low"\nservices = ["storage"]',
            'risk = "high"\nservices = ["storage"]',
            "templates[2].risk",
            "pre-approved",
        ),
        (
            'services = ["storage"]',
            'services = ["storage", "tape"]',
            "templates[2].services",
            "unknown service 'tape'",
        ),
        ('services = ["storage"]', "services = []", "templates[2].services", "must list the services"),
        ("duration_minutes = 30", "duration_minutes = -5", "templates[2].duration_minutes", "between 1"),
        ('backout_plan = "Set the previous quota again."', "", "templates[2].backout_plan", "non-empty"),
    ],
)
def test_a_broken_rule_names_file_key_and_rule(conf_dir, old, new, key, rule):
    edit(conf_dir, old, new)
    with pytest.raises(ConfigError) as info:
        load_config(conf_dir)
    error = info.value
    assert Path(error.path) == conf_dir / "changes.toml"
    assert error.key == key and rule in error.rule, (error.key, error.rule)


def test_an_override_directory_without_it_uses_the_shipped_file(conf_dir):
    (conf_dir / "changes.toml").unlink()
    load_config(conf_dir)  # an override directory without it falls back to the shipped file
    shipped = shipped_config_dir() / "changes.toml"
    assert shipped.is_file()
