"""Configuration: where the database is, and the validated TOML files of the service desk.

The shipped files live in the package's ``data`` folder; a directory named in ``ITSM_CONFIG_DIR`` overrides
any of them file by file. Every file is validated when loaded: a bad file raises :class:`ConfigError`
naming the file, the key and the rule, and start-up stops there.
"""

from __future__ import annotations

import difflib
import itertools
import os
import re
import string
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from itsm_tui.constants import LEVELS, ROLES, TICKET_KINDS

CONFIG_FILES = (
    "priority.toml",
    "sla.toml",
    "calendars.toml",
    "raci.toml",
    "catalog.toml",
    "kpi.toml",
    "changes.toml",
    "replies.toml",
    "problems.toml",
)
# Files whose absence (from the shipped folder too) means their defaults rather than a refusal to start.
OPTIONAL_CONFIG_FILES = ("problems.toml",)
# How incidents are clustered into candidate problems (problems.toml [candidates] by).
CANDIDATE_CLUSTERINGS = ("ci", "service_category")
KPI_NAMES = ("sla_resolution", "sla_response", "fcr", "csat", "mttr_hours", "reopen_rate", "change_success")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RACI_LETTERS = ("R", "A", "C", "I")
REPLY_KINDS = ("reply", "note", "both")  # which form a template of replies.toml is offered in
# The placeholders a reply or note template may use (services/replies.py fills them).
REPLY_PLACEHOLDERS = ("ref", "title", "requester", "agent", "group")
MAJOR_INCIDENT_ACTIVITY = "major_incident"  # the RACI activity whose Accountable hears of major incidents
KINDS = TICKET_KINDS  # the ticket kinds by their configuration name (LEVELS and ROLES are imported from here)


class ConfigError(Exception):
    """A configuration file breaks a rule; the message names the file, the key and the rule."""

    def __init__(self, path: Path | str, key: str, rule: str) -> None:
        self.path, self.key, self.rule = str(path), key, rule
        super().__init__(f"{path}: {key}: {rule}")


# --------------------------------------------------------------------------- database location


def default_database_url() -> str:
    """The embedded SQLite file in the user's data directory.

    It holds every ticket, so it is the user's alone: when it does not exist yet, its folder is made 0700
    and the file 0600 (``db._ensure_sqlite_directory``, before SQLite would make it readable by all).
    """
    from platformdirs import user_data_path

    return f"sqlite:///{user_data_path('itsm-tui', appauthor=False) / 'itsm.db'}"


def resolve_database_url(cli_value: str | None = None) -> str:
    """``--db`` wins, then ``ITSM_DB_URL``, then the default SQLite file.

    A bare path (no ``://``) is taken as an SQLite file, so ``--db desk.db`` works. Whether a database
    the desk runs on is found there is ``db.check_url``'s to say.
    """
    url = cli_value or os.environ.get("ITSM_DB_URL") or default_database_url()
    if "://" not in url:
        url = f"sqlite:///{Path(url).expanduser().resolve()}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


# --------------------------------------------------------------------------- the files


def shipped_config_dir() -> Path:
    """The ``data`` folder shipped with the package (or the source tree's, when run from a checkout)."""
    here = Path(__file__).resolve().parent
    installed = here / "data"
    if (installed / "catalog.toml").is_file():
        return installed
    return here.parent / "data"


@dataclass(frozen=True)
class Calendar:
    """A business calendar: time zone, working hours per weekday, holidays, or always open."""

    name: str
    timezone: str
    always_open: bool = False
    # weekday index (0 = Monday) -> (start, end) spans in minutes after local midnight (end may be 1440)
    hours: dict[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()
    country: str | None = None

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_holiday(self, day: date) -> bool:
        if day in self.holidays:
            return True
        return self.country is not None and day in _country_holidays(self.country, day.year)


_HOLIDAY_CACHE: dict[tuple[str, int], frozenset[date]] = {}


_COUNTRY_CODE = re.compile(r"[A-Z]{2,3}$")


def _supported_countries() -> set[str]:
    """The country codes the holidays package knows (alpha-2, alpha-3 and aliases such as UK)."""

    def codes() -> list[str]:
        from holidays import registry

        # Each entry: class name, then its codes and other names.
        entries = registry.COUNTRIES.values()
        return [code for names in entries for code in names[1:] if _COUNTRY_CODE.match(code)]

    return set(_kept("countries", codes))


def _country_holidays(country: str, year: int) -> frozenset[date]:
    key = (country, year)
    if key not in _HOLIDAY_CACHE:

        def days() -> list[str]:
            import holidays

            return [day.isoformat() for day in holidays.country_holidays(country, years=year)]

        _HOLIDAY_CACHE[key] = frozenset(date.fromisoformat(d) for d in _kept(f"{country}-{year}", days))
    return _HOLIDAY_CACHE[key]


def _kept(name: str, compute: Callable[[], list[str]]) -> list[str]:
    """What ``compute`` gives from the holidays package, kept in the user's cache folder for as long as that
    package is unchanged: importing it and a country's rules costs a sixth of a second at every start."""
    import importlib.metadata
    import importlib.util
    import tempfile

    from platformdirs import user_cache_path

    spec = importlib.util.find_spec("holidays")
    origin = Path(spec.origin) if spec and spec.origin else None
    try:
        version = importlib.metadata.version("holidays")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    # The version and the file's time: an install that fixes file times still changes the version.
    stamp = f"{version}-{origin.stat().st_mtime_ns}" if origin and origin.exists() else version
    path = user_cache_path("itsm-tui") / f"holidays-{stamp}-{name}.txt"
    try:
        return path.read_text(encoding="utf-8").split()
    except OSError:
        pass
    values = compute()
    try:  # a cache only: a read-only home just means computing again next time
        path.parent.mkdir(parents=True, exist_ok=True)
        # A private temporary file, published whole: another thread or console never reads half of it.
        handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write("\n".join(values))
            os.replace(partial, path)
        except OSError:
            Path(partial).unlink(missing_ok=True)
            raise
    except OSError:
        pass
    return values


@dataclass(frozen=True)
class SlaPolicy:
    priority: int
    calendar: str
    response_minutes: int
    resolution_minutes: int


@dataclass(frozen=True)
class KpiTarget:
    """A KPI's target and amber threshold; ``better`` says which way is good."""

    name: str
    label: str
    unit: str
    target: float
    amber: float
    better: str  # higher | lower

    def status(self, value: float | None) -> str:
        """green, amber or red for a value (grey when there is no value)."""
        if value is None:
            return "grey"
        if self.better == "higher":
            return "green" if value >= self.target else "amber" if value >= self.amber else "red"
        return "green" if value <= self.target else "amber" if value <= self.amber else "red"


@dataclass(frozen=True)
class EscalationRule:
    """On an SLA event, hand tickets of some priorities from a support level to another group."""

    event: str  # warning | breach
    target: str  # response | resolution
    priorities: frozenset[int]
    from_level: int
    to: str  # "service" (the service's support group) or a group code


@dataclass(frozen=True)
class Group:
    code: str
    name: str
    level: int


@dataclass(frozen=True)
class Service:
    code: str
    name: str
    support_group: str
    cis: tuple[str, ...]


@dataclass(frozen=True)
class RaciActivity:
    name: str
    description: str
    assignments: dict[str, str]  # role -> letter

    def roles_with(self, letter: str) -> list[str]:
        return [role for role, value in self.assignments.items() if value == letter]


@dataclass(frozen=True)
class ChangeTemplate:
    """A pre-approved standard change: what it does, where it may be used and how long it takes."""

    code: str
    title: str
    risk: str
    services: tuple[str, ...]
    duration_minutes: int
    implementation_plan: str
    backout_plan: str
    test_plan: str


@dataclass(frozen=True)
class RiskAnswer:
    """One answer of a risk question and the points it adds to the score."""

    label: str
    points: int


@dataclass(frozen=True)
class RiskQuestion:
    """One question of the risk questionnaire (changes.toml ``[[risk.questions]]``).

    ``suggest`` names what the desk can work out itself and offer as the answer (the assessor may change
    it): ``services`` (how many services the change affects: the first answer for one, the second for two
    or three, the last for more), ``window`` (outside a maintenance window: the first answer no, the second
    yes), ``failures`` (changes of its services that failed in the last ``[impact] failed_days``: the first
    answer none, the second some); None: the assessor answers."""

    id: str
    text: str
    answers: tuple[RiskAnswer, ...]
    suggest: str | None = None


# What a risk question may suggest from the change itself (RiskQuestion.suggest).
RISK_SUGGESTIONS = ("services", "window", "failures")


@dataclass(frozen=True)
class RiskPolicy:
    """changes.toml ``[risk]``: the questionnaire, and the scores from which a change is medium or high."""

    questions: tuple[RiskQuestion, ...] = ()
    medium: int = 3
    high: int = 6

    def level(self, score: int) -> str:
        """The risk a score gives: low below ``medium``, high from ``high``."""
        return "high" if score >= self.high else "medium" if score >= self.medium else "low"


@dataclass(frozen=True)
class ApprovalRule:
    """How many of the CAB members asked must approve: ``all``, or ``quorum`` of them."""

    rule: str = "all"  # all | quorum
    quorum: int = 1


@dataclass(frozen=True)
class CabSchedule:
    """changes.toml ``[cab]``: when the CAB meets (a recurring rule on local time, as maintenance windows
    recur) and how long before a meeting a change must be submitted to be on its agenda."""

    rrule: str = "FREQ=WEEKLY;BYDAY=TU"
    start_local: str = "10:00"
    duration_minutes: int = 60
    timezone: str = "UTC"
    cutoff_hours: int = 24


@dataclass(frozen=True)
class ChangePolicy:
    """changes.toml: the CAB approval rule, CAB assignments, the emergency CAB, the early start, reminder
    timing and standard templates."""

    rule: str = "all"  # all | quorum
    quorum: int = 1
    assign_by_support_group: bool = True
    members: dict[str, tuple[str, ...]] = field(default_factory=dict)  # service -> CAB logins
    lead_time_hours: int = 24
    review_due_days: int = 5
    conflict_horizon_days: int = 60
    interval_seconds: int = 300
    templates: dict[str, ChangeTemplate] = field(default_factory=dict)
    # The emergency CAB: logins who, beside the change managers, approve or reject emergency changes.
    emergency_cab: tuple[str, ...] = ()
    # How long before its planned start the implementer may begin a change (later than that a change
    # manager starts it with an override reason).
    early_start_minutes: int = 15
    # [approval.by_risk]: the approval rule for changes of a risk (a risk not named follows rule/quorum).
    by_risk: dict[str, ApprovalRule] = field(default_factory=dict)
    risk: RiskPolicy = field(default_factory=RiskPolicy)
    cab: CabSchedule = field(default_factory=CabSchedule)
    # [conflicts] same_service: how two overlapping changes of one service on different CIs count
    # ("warning" or "conflict"); the same CI, or a whole service, is always a conflict.
    same_service_severity: str = "warning"
    # [impact]: how far back failed changes of the same services are listed (and suggested to the risk
    # questionnaire), and within how many days of its end an incident linked to a change counts as caused
    # by it (the change KPIs).
    failed_days: int = 30
    incident_days: int = 7
    # [slots]: how far ahead the next free slot is looked for, and the step between candidate starts.
    slot_horizon_days: int = 90
    slot_step_minutes: int = 30

    def approval_rule(self, risk: str | None) -> ApprovalRule:
        """The approval rule for a change of ``risk``: its [approval.by_risk] entry, else rule/quorum."""
        if risk is not None and risk in self.by_risk:
            return self.by_risk[risk]
        return ApprovalRule(self.rule, self.quorum)


@dataclass(frozen=True)
class ReplyTemplate:
    """A canned reply or work-note template of replies.toml: the name its form lists, which form offers it
    (``kind``: reply, note or both) and its text, whose placeholders are all known (checked on load)."""

    name: str
    kind: str
    text: str

    def offered_for(self, public: bool) -> bool:
        """Whether the form of a public reply (``public``) or of an internal note offers it."""
        return self.kind == "both" or self.kind == ("reply" if public else "note")


@dataclass(frozen=True)
class ProblemsConfig:
    """problems.toml: when a cluster of incidents is a candidate problem (services/problems/candidates.py).

    At least ``min_incidents`` incidents opened within the last ``window_days`` days on one configuration
    item (``"ci"`` in ``by``) or on one service and category (``"service_category"``), none linked to a
    problem and no open problem covering them; at most ``limit`` candidates are listed.
    """

    min_incidents: int = 5
    window_days: int = 14
    by: tuple[str, ...] = CANDIDATE_CLUSTERINGS
    limit: int = 50


@dataclass(frozen=True)
class DeskConfig:
    """Everything the shipped (or overriding) TOML files say, validated."""

    priority_matrix: dict[str, dict[str, int]]
    policies: dict[int, SlaPolicy]
    warning_ratio: float
    scan_interval_seconds: int
    auto_close_days: int
    reopen_restarts_resolution: bool
    escalations: tuple[EscalationRule, ...]
    calendars: dict[str, Calendar]
    raci: dict[str, RaciActivity]
    groups: dict[str, Group]
    services: dict[str, Service]
    categories: dict[str, tuple[str, ...]]
    resolution_codes: tuple[str, ...]
    kpi_targets: dict[str, KpiTarget]
    sources: dict[str, Path]
    changes: ChangePolicy = field(default_factory=ChangePolicy)
    # Priorities announced as major incidents (sla.toml), and how recent a group member's work at the desk
    # must be for them to count as on shift (services/tickets/major.py).
    major_incident_priorities: frozenset[int] = frozenset({1})
    on_shift_minutes: int = 60
    # Whether each console runs the scheduler's jobs (the SLA scan, change reminders) itself (sla.toml);
    # false: only `itsm scheduler` hosts run them.
    jobs_in_consoles: bool = True
    reply_templates: tuple[ReplyTemplate, ...] = ()
    problems: ProblemsConfig = field(default_factory=ProblemsConfig)

    def priority_for(self, impact: str, urgency: str) -> int:
        return self.priority_matrix[impact][urgency]

    def raci_roles(self, activity: str, letter: str) -> list[str]:
        """Roles holding ``letter`` (R, A, C or I) for ``activity``."""
        if letter not in RACI_LETTERS:
            raise ValueError(f"RACI letter must be one of {', '.join(RACI_LETTERS)}, not {letter!r}")
        try:
            return self.raci[activity].roles_with(letter)
        except KeyError:
            known = ", ".join(sorted(self.raci))
            raise KeyError(f"unknown RACI activity {activity!r}; known: {known}") from None

    def service_for_ci(self, ci: str) -> Service | None:
        for service in self.services.values():
            if ci in service.cis:
                return service
        return None


def config_paths(config_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Which file each configuration comes from: the override directory's copy if it has one."""
    override = Path(config_dir) if config_dir else None
    if override is None and os.environ.get("ITSM_CONFIG_DIR"):
        override = Path(os.environ["ITSM_CONFIG_DIR"])
    if override is not None and not override.is_dir():
        raise ConfigError(override, "ITSM_CONFIG_DIR", "must name an existing directory")
    shipped = shipped_config_dir()
    if override is not None:
        _check_trusted(override, shipped)
    paths = {}
    for name in CONFIG_FILES:
        candidate = override / name if override is not None else None
        # Anything present under the name overrides, even a broken link or a folder: loading it then
        # stops start-up, where falling back to the shipped file would silently run on other rules.
        present = candidate is not None and (candidate.exists() or candidate.is_symlink())
        if candidate is not None and present:
            _check_trusted(candidate, shipped)
        paths[name] = candidate if candidate is not None and present else shipped / name
    return paths


def _owner_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _check_trusted(path: Path, shipped: Path) -> None:
    """The desk's rules (who approves, SLA targets, the RACI) are the desk's, not the caller's: an override
    directory, and each file used from it, must belong to root or to whoever installed the program (the
    owner of its shipped ``data`` folder) and be writable by nobody else. So a person cannot loosen the rules
    for their own process by pointing ``ITSM_CONFIG_DIR`` at a copy they edited. A file that cannot be looked
    at is left to the loading, which names it."""
    if os.name != "posix":
        return
    try:
        installer = shipped.stat().st_uid
        info = path.stat()  # a link is judged by what it names
    except OSError:
        return
    trusted = {0, installer}
    if info.st_uid not in trusted:
        owners = " or ".join(_owner_name(uid) for uid in sorted(trusted))
        raise ConfigError(
            path,
            "ITSM_CONFIG_DIR",
            f"belongs to {_owner_name(info.st_uid)}: the desk's rules are read only from files of {owners} "
            f"(the program's installer); ask an admin to put them in place (e.g. /etc/itsm, mode 0644)",
        )
    if info.st_mode & 0o022:
        raise ConfigError(
            path,
            "ITSM_CONFIG_DIR",
            "may be changed by others (group or world writable): the desk's rules must be writable by their "
            "owner only; chmod go-w it",
        )


def load_config(config_dir: str | os.PathLike[str] | None = None) -> DeskConfig:
    """Load and validate every configuration file; raise :class:`ConfigError` on the first broken rule."""
    paths = config_paths(config_dir)
    raw = {
        name: {}
        if name in OPTIONAL_CONFIG_FILES and not (path.exists() or path.is_symlink())
        else read_toml(path)
        for name, path in paths.items()
    }

    calendars = _parse_calendars(paths["calendars.toml"], raw["calendars.toml"])
    catalog = _Catalog.parse(paths["catalog.toml"], raw["catalog.toml"])
    matrix = _parse_priority(paths["priority.toml"], raw["priority.toml"])
    sla = _parse_sla(paths["sla.toml"], raw["sla.toml"], calendars)
    used = sorted({p for row in matrix.values() for p in row.values()})
    for priority in used:
        if priority not in sla["policies"]:
            raise ConfigError(
                paths["priority.toml"],
                "matrix",
                f"priority P{priority} is used but sla.toml has no [policies.P{priority}]",
            )
    raci = _parse_raci(paths["raci.toml"], raw["raci.toml"])
    if MAJOR_INCIDENT_ACTIVITY not in raci:
        raise ConfigError(
            paths["raci.toml"],
            f"activities.{MAJOR_INCIDENT_ACTIVITY}",
            "missing: major incidents (sla.toml major_incident_priorities) are announced to its Accountable",
        )
    escalations = _parse_escalations(paths["sla.toml"], raw["sla.toml"], catalog.groups)
    return DeskConfig(
        priority_matrix=matrix,
        policies=sla["policies"],
        warning_ratio=sla["warning_ratio"],
        scan_interval_seconds=sla["scan_interval_seconds"],
        auto_close_days=sla["auto_close_days"],
        reopen_restarts_resolution=sla["reopen_restarts_resolution"],
        escalations=escalations,
        calendars=calendars,
        raci=raci,
        groups=catalog.groups,
        services=catalog.services,
        categories=catalog.categories,
        resolution_codes=catalog.resolution_codes,
        kpi_targets=_parse_kpi(paths["kpi.toml"], raw["kpi.toml"]),
        sources=paths,
        changes=_parse_changes(paths["changes.toml"], raw["changes.toml"], catalog.services),
        major_incident_priorities=sla["major_incident_priorities"],
        on_shift_minutes=sla["on_shift_minutes"],
        jobs_in_consoles=sla["jobs_in_consoles"],
        reply_templates=_parse_replies(paths["replies.toml"], raw["replies.toml"]),
        problems=_parse_problems(paths["problems.toml"], raw["problems.toml"]),
    )


def read_toml(
    path: Path,
    error: Callable[[Path, str, str], Exception] = ConfigError,
    missing: str = "file is missing",
) -> dict:
    """The table of a TOML file, or ``error(path, key, rule)`` naming why it cannot be read: not a regular
    file, missing (``missing`` says so), a dangling link, unreadable, not UTF-8, not TOML. The key files of
    :mod:`itsm_tui.keymap` are read with it too, raising their own error."""
    if path.exists() and not path.is_file() and not path.is_dir():
        # A pipe or a device would block start-up on the read, or feed it something else than a file.
        raise error(path, "(file)", "is not a regular file; it must be a TOML file")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if path.is_symlink():
            raise error(
                path, "(file)", f"is a symbolic link to {os.readlink(path)}, which does not exist"
            ) from None
        raise error(path, "(file)", missing) from None
    except IsADirectoryError:
        raise error(path, "(file)", "is a directory; it must be a TOML file") from None
    except PermissionError:
        raise error(path, "(file)", "cannot be read: permission denied") from None
    except OSError as exc:
        raise error(path, "(file)", f"cannot be read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise error(
            path, "(encoding)", f"not UTF-8 (byte {exc.start + 1}, line {line}); save the file as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(path, "(syntax)", f"not valid TOML: {exc}") from None


def _check_keys(path: Path, body: dict, where: str, keys: tuple[str, ...] | list[str]) -> None:
    """Refuse a key of the table ``where`` ("" for the top of the file) that is not one of ``keys``.

    A misspelt key would otherwise be dropped and its default used without a word; the rule names the
    nearest known key, since a typo is the usual cause.
    """
    for key in body:
        if key in keys:
            continue
        table = f"[{where}]" if where else "the file's top level"
        close = difflib.get_close_matches(str(key), list(keys), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        known = ", ".join(keys) if keys else "no keys"
        name = f"{where}.{key}" if where else str(key)
        raise ConfigError(path, name, f"unknown key; {table} knows {known}{hint}")


def _table(path: Path, data: dict, key: str) -> dict:
    value = data.get(key)
    if not isinstance(value, dict) or not value:
        raise ConfigError(path, key, "must be a non-empty table")
    return value


def _array_of_tables(path: Path, data: dict, name: str) -> list[tuple[str, dict]]:
    """The ``[[name]]`` tables (none if absent), each with its key for messages (``name[0]``, ...)."""
    raw = data.get(name, [])
    if not isinstance(raw, list):
        raise ConfigError(path, name, f"must be a list of [[{name}]] tables")
    tables = []
    for index, body in enumerate(raw):
        key = f"{name}[{index}]"
        if not isinstance(body, dict):
            raise ConfigError(path, key, "must be a table")
        tables.append((key, body))
    return tables


def _int(path: Path, key: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(path, key, f"must be a whole number, not {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(path, key, f"must be {bound}, not {value}")
    return value


def _parse_priority(path: Path, data: dict) -> dict[str, dict[str, int]]:
    _check_keys(path, data, "", ("matrix",))
    matrix = _table(path, data, "matrix")
    result: dict[str, dict[str, int]] = {}
    for impact in matrix:
        if impact not in LEVELS:
            raise ConfigError(path, f"matrix.{impact}", f"unknown impact; use {', '.join(LEVELS)}")
    for impact in LEVELS:
        row = matrix.get(impact)
        if not isinstance(row, dict):
            raise ConfigError(path, f"matrix.{impact}", "missing: every impact needs a row")
        for urgency in row:
            if urgency not in LEVELS:
                raise ConfigError(
                    path, f"matrix.{impact}.{urgency}", f"unknown urgency; use {', '.join(LEVELS)}"
                )
        result[impact] = {}
        for urgency in LEVELS:
            if urgency not in row:
                raise ConfigError(
                    path, f"matrix.{impact}.{urgency}", "missing: every urgency needs a priority"
                )
            result[impact][urgency] = _int(path, f"matrix.{impact}.{urgency}", row[urgency], 1, 5)
    return result


_SLA_KEYS = (
    "warning_ratio",
    "scan_interval_seconds",
    "auto_close_days",
    "reopen_restarts_resolution",
    "major_incident_priorities",
    "on_shift_minutes",
    "jobs_in_consoles",
    "policies",
    "escalations",
)


def _parse_sla(path: Path, data: dict, calendars: dict[str, Calendar]) -> dict:
    _check_keys(path, data, "", _SLA_KEYS)
    ratio = data.get("warning_ratio", 0.75)
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio < 1:
        raise ConfigError(
            path, "warning_ratio", f"must be a number between 0 and 1 (exclusive), not {ratio!r}"
        )
    interval = _int(path, "scan_interval_seconds", data.get("scan_interval_seconds", 30), 1, 3600)
    auto_close = _int(path, "auto_close_days", data.get("auto_close_days", 5), 0, 365)
    restarts = data.get("reopen_restarts_resolution", False)
    if not isinstance(restarts, bool):
        raise ConfigError(path, "reopen_restarts_resolution", "must be true or false")
    majors = data.get("major_incident_priorities", [1])
    if not isinstance(majors, list) or not majors:
        raise ConfigError(path, "major_incident_priorities", "must list priorities, e.g. [1] or [1, 2]")
    for p in majors:
        _int(path, "major_incident_priorities", p, 1, 5)
    if len(set(majors)) != len(majors):
        raise ConfigError(path, "major_incident_priorities", f"lists a priority twice: {majors}")
    on_shift = _int(path, "on_shift_minutes", data.get("on_shift_minutes", 60), 1, 24 * 60)
    in_consoles = data.get("jobs_in_consoles", True)
    if not isinstance(in_consoles, bool):
        raise ConfigError(path, "jobs_in_consoles", "must be true or false")
    policies: dict[int, SlaPolicy] = {}
    for name, body in _table(path, data, "policies").items():
        match = re.fullmatch(r"P([1-5])", name)
        if not match:
            raise ConfigError(path, f"policies.{name}", "policy names are P1 to P5")
        if not isinstance(body, dict):
            raise ConfigError(path, f"policies.{name}", "must be a table")
        _check_keys(path, body, f"policies.{name}", ("calendar", "response_minutes", "resolution_minutes"))
        calendar = body.get("calendar")
        if calendar not in calendars:
            known = ", ".join(sorted(calendars))
            raise ConfigError(
                path, f"policies.{name}.calendar", f"unknown calendar {calendar!r}; known: {known}"
            )
        response = _int(path, f"policies.{name}.response_minutes", body.get("response_minutes"), 1)
        resolution = _int(path, f"policies.{name}.resolution_minutes", body.get("resolution_minutes"), 1)
        if resolution < response:
            raise ConfigError(
                path, f"policies.{name}.resolution_minutes", "must not be shorter than response_minutes"
            )
        priority = int(match.group(1))
        policies[priority] = SlaPolicy(priority, calendar, response, resolution)
    return {
        "policies": policies,
        "warning_ratio": float(ratio),
        "scan_interval_seconds": interval,
        "auto_close_days": auto_close,
        "reopen_restarts_resolution": restarts,
        "major_incident_priorities": frozenset(majors),
        "on_shift_minutes": on_shift,
        "jobs_in_consoles": in_consoles,
    }


def _parse_escalations(path: Path, data: dict, groups: dict[str, Group]) -> tuple[EscalationRule, ...]:
    rules = []
    for key, body in _array_of_tables(path, data, "escalations"):
        _check_keys(path, body, key, ("event", "target", "priorities", "from_level", "to"))
        event = body.get("event")
        if event not in ("warning", "breach"):
            raise ConfigError(path, f"{key}.event", f"must be warning or breach, not {event!r}")
        target = body.get("target", "resolution")
        if target not in ("response", "resolution"):
            raise ConfigError(path, f"{key}.target", f"must be response or resolution, not {target!r}")
        priorities = body.get("priorities")
        if not isinstance(priorities, list) or not priorities:
            raise ConfigError(path, f"{key}.priorities", "must list priorities, e.g. [1, 2]")
        for p in priorities:
            _int(path, f"{key}.priorities", p, 1, 5)
        from_level = _int(path, f"{key}.from_level", body.get("from_level", 1), 1, 3)
        to = body.get("to", "service")
        if to != "service" and to not in groups:
            raise ConfigError(
                path, f"{key}.to", f'must be "service" or a group code ({", ".join(groups)}), not {to!r}'
            )
        rules.append(EscalationRule(event, target, frozenset(priorities), from_level, to))
    return tuple(rules)


def _parse_kpi(path: Path, data: dict) -> dict[str, KpiTarget]:
    targets: dict[str, KpiTarget] = {}
    _check_keys(path, data, "", ("targets",))
    for name, body in _table(path, data, "targets").items():
        key = f"targets.{name}"
        if name not in KPI_NAMES:
            raise ConfigError(path, key, f"unknown KPI; KPIs with targets are {', '.join(KPI_NAMES)}")
        if not isinstance(body, dict):
            raise ConfigError(path, key, "must be a table")
        _check_keys(path, body, key, ("label", "unit", "target", "amber", "better"))
        better = body.get("better", "higher")
        if better not in ("higher", "lower"):
            raise ConfigError(path, f"{key}.better", f'must be "higher" or "lower", not {better!r}')
        values = {}
        for field_name in ("target", "amber"):
            value = body.get(field_name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(path, f"{key}.{field_name}", f"must be a number, not {value!r}")
            values[field_name] = float(value)
        if (better == "higher" and values["amber"] > values["target"]) or (
            better == "lower" and values["amber"] < values["target"]
        ):
            raise ConfigError(
                path,
                f"{key}.amber",
                f"with better = {better!r} the amber threshold must lie beyond the target",
            )
        targets[name] = KpiTarget(
            name,
            str(body.get("label", name)),
            str(body.get("unit", "")),
            values["target"],
            values["amber"],
            better,
        )
    return targets


_HOURS = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)")


def _parse_calendars(path: Path, data: dict) -> dict[str, Calendar]:
    result: dict[str, Calendar] = {}
    _check_keys(path, data, "", ("calendars",))
    for name, body in _table(path, data, "calendars").items():
        key = f"calendars.{name}"
        if not isinstance(body, dict):
            raise ConfigError(path, key, "must be a table")
        _check_keys(path, body, key, ("timezone", "always_open", "hours", "holidays", "country"))
        zone_name = body.get("timezone")
        try:
            ZoneInfo(str(zone_name))
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                path, f"{key}.timezone", f"unknown time zone {zone_name!r} (e.g. Europe/Berlin)"
            ) from None
        always_open = body.get("always_open", False)
        if not isinstance(always_open, bool):
            raise ConfigError(path, f"{key}.always_open", "must be true or false")
        hours: dict[int, tuple[tuple[int, int], ...]] = {}
        raw_hours = body.get("hours", {})
        if not isinstance(raw_hours, dict):
            raise ConfigError(path, f"{key}.hours", "must be a table of weekdays")
        for day, spans in raw_hours.items():
            if day not in WEEKDAYS:
                raise ConfigError(path, f"{key}.hours.{day}", f"unknown weekday; use {', '.join(WEEKDAYS)}")
            if not isinstance(spans, list):
                raise ConfigError(path, f"{key}.hours.{day}", 'must be a list like ["08:00-18:00"]')
            parsed = []
            for span in spans:
                match = _HOURS.fullmatch(str(span))
                if not match:
                    raise ConfigError(path, f"{key}.hours.{day}", f'{span!r} is not "HH:MM-HH:MM"')
                h1, m1, h2, m2 = map(int, match.groups())
                if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
                    raise ConfigError(path, f"{key}.hours.{day}", f"{span!r} is not a time of day")
                start, end = h1 * 60 + m1, h2 * 60 + m2
                if end <= start:
                    raise ConfigError(
                        path, f"{key}.hours.{day}", f"{span!r}: the end must be after the start"
                    )
                parsed.append((start, end))
            parsed.sort()
            for (_, end_a), (start_b, _) in itertools.pairwise(parsed):
                if start_b < end_a:
                    raise ConfigError(path, f"{key}.hours.{day}", "working hours overlap")
            hours[WEEKDAYS.index(day)] = tuple(parsed)
        if not always_open and not any(hours.values()):
            raise ConfigError(path, f"{key}.hours", "a calendar needs working hours or always_open = true")
        holidays: set[date] = set()
        raw_holidays = body.get("holidays", [])
        if not isinstance(raw_holidays, list):
            raise ConfigError(path, f"{key}.holidays", 'must be a list of dates like ["2026-12-24"]')
        for item in raw_holidays:
            if isinstance(item, date):
                holidays.add(item)
                continue
            try:
                holidays.add(date.fromisoformat(str(item)))
            except ValueError:
                raise ConfigError(path, f"{key}.holidays", f"{item!r} is not a date (YYYY-MM-DD)") from None
        country = body.get("country")
        if country is not None:
            if str(country).upper() not in _supported_countries():
                raise ConfigError(
                    path, f"{key}.country", f"{country!r} is not a supported country code (e.g. DE)"
                )
            country = str(country).upper()
        result[name] = Calendar(name, str(zone_name), always_open, hours, frozenset(holidays), country)
    return result


def _parse_raci(path: Path, data: dict) -> dict[str, RaciActivity]:
    result: dict[str, RaciActivity] = {}
    _check_keys(path, data, "", ("activities",))
    for name, body in _table(path, data, "activities").items():
        key = f"activities.{name}"
        if not isinstance(body, dict):
            raise ConfigError(path, key, "must be a table of role = letter")
        assignments: dict[str, str] = {}
        description = ""
        for role, letter in body.items():
            if role == "description":
                description = str(letter)
                continue
            if role not in ROLES:
                raise ConfigError(path, f"{key}.{role}", f"unknown role; roles are {', '.join(ROLES)}")
            if letter not in RACI_LETTERS:
                raise ConfigError(path, f"{key}.{role}", f"{letter!r} is not one of R, A, C, I")
            assignments[role] = letter
        accountable = [r for r, v in assignments.items() if v == "A"]
        if len(accountable) != 1:
            found = ", ".join(accountable) if accountable else "none"
            raise ConfigError(
                path, key, f"needs exactly one Accountable (A); found {len(accountable)}: {found}"
            )
        if "R" not in assignments.values():
            raise ConfigError(path, key, "needs at least one Responsible (R)")
        result[name] = RaciActivity(name, description, assignments)
    return result


@dataclass
class _Catalog:
    groups: dict[str, Group]
    services: dict[str, Service]
    categories: dict[str, tuple[str, ...]]
    resolution_codes: tuple[str, ...]

    @classmethod
    def parse(cls, path: Path, data: dict) -> _Catalog:
        _check_keys(path, data, "", ("groups", "services", "categories", "resolution_codes"))
        groups: dict[str, Group] = {}
        raw_groups = data.get("groups")
        if not isinstance(raw_groups, list) or not raw_groups:
            raise ConfigError(path, "groups", "must list at least one [[groups]] entry")
        for index, body in enumerate(raw_groups):
            key = f"groups[{index}]"
            if not isinstance(body, dict):
                raise ConfigError(path, key, "must be a table")
            _check_keys(path, body, key, ("code", "name", "level"))
            code = body.get("code")
            if not isinstance(code, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", code):
                raise ConfigError(path, f"{key}.code", "needs a code of letters, digits, - or _ (1-32)")
            if code in groups:
                raise ConfigError(path, f"{key}.code", f"group {code!r} is defined twice")
            name = body.get("name")
            if not isinstance(name, str) or not name.strip():
                raise ConfigError(path, f"{key}.name", "needs a name")
            level = _int(path, f"{key}.level", body.get("level"), 1, 3)
            groups[code] = Group(code, name, level)
        if not any(g.level == 1 for g in groups.values()):
            raise ConfigError(path, "groups", "needs a level-1 group (the service desk)")
        services: dict[str, Service] = {}
        seen_cis: dict[str, str] = {}
        raw_services = data.get("services")
        if not isinstance(raw_services, list) or not raw_services:
            raise ConfigError(path, "services", "must list at least one [[services]] entry")
        for index, body in enumerate(raw_services):
            key = f"services[{index}]"
            if not isinstance(body, dict):
                raise ConfigError(path, key, "must be a table")
            _check_keys(path, body, key, ("code", "name", "support_group", "cis"))
            code = body.get("code")
            if not isinstance(code, str) or not re.fullmatch(r"[a-z0-9_-]{1,32}", code):
                raise ConfigError(path, f"{key}.code", "needs a lower-case code of letters, digits, - or _")
            if code in services:
                raise ConfigError(path, f"{key}.code", f"service {code!r} is defined twice")
            group = body.get("support_group")
            if group not in groups:
                raise ConfigError(
                    path, f"{key}.support_group", f"unknown group {group!r}; known: {', '.join(groups)}"
                )
            cis = body.get("cis", [])
            if not isinstance(cis, list) or not all(isinstance(c, str) and c for c in cis):
                raise ConfigError(path, f"{key}.cis", "must be a list of configuration-item names")
            for ci in cis:
                if ci in seen_cis:
                    raise ConfigError(
                        path, f"{key}.cis", f"{ci!r} already belongs to service {seen_cis[ci]!r}"
                    )
                seen_cis[ci] = code
            services[code] = Service(code, str(body.get("name") or code), group, tuple(cis))
        raw_categories = data.get("categories")
        if not isinstance(raw_categories, dict):
            raise ConfigError(path, "categories", "must be a table with incident and request lists")
        _check_keys(path, raw_categories, "categories", KINDS)
        categories: dict[str, tuple[str, ...]] = {}
        for kind in KINDS:
            values = raw_categories.get(kind)
            if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
                raise ConfigError(path, f"categories.{kind}", "must be a non-empty list of names")
            categories[kind] = tuple(values)
        codes = _known_keys(path, data, "resolution_codes", ("codes",)).get("codes")
        if not isinstance(codes, list) or not codes or not all(isinstance(c, str) for c in codes):
            raise ConfigError(path, "resolution_codes.codes", "must be a non-empty list of codes")
        return cls(groups, services, categories, tuple(codes))


_TEMPLATE_KEYS = (
    "code",
    "title",
    "risk",
    "services",
    "duration_minutes",
    "implementation_plan",
    "backout_plan",
    "test_plan",
)


def _parse_changes(path: Path, data: dict, services: dict[str, Service]) -> ChangePolicy:
    _check_keys(
        path,
        data,
        "",
        (
            "approval",
            "emergency",
            "implementation",
            "reminders",
            "templates",
            "risk",
            "cab",
            "conflicts",
            "impact",
            "slots",
        ),
    )
    approval = _known_keys(
        path, data, "approval", ("rule", "quorum", "assign_by_support_group", "members", "by_risk")
    )
    rule = approval.get("rule", "all")
    if rule not in ("all", "quorum"):
        raise ConfigError(path, "approval.rule", f'must be "all" or "quorum", not {rule!r}')
    quorum = _int(path, "approval.quorum", approval.get("quorum", 1), 1, 50)
    by_group = approval.get("assign_by_support_group", True)
    if not isinstance(by_group, bool):
        raise ConfigError(path, "approval.assign_by_support_group", "must be true or false")
    raw_members = approval.get("members", {})
    if not isinstance(raw_members, dict):
        raise ConfigError(path, "approval.members", 'must be a table of service = ["login", ...]')
    members: dict[str, tuple[str, ...]] = {}
    for service, logins in raw_members.items():
        key = f"approval.members.{service}"
        if service not in services:
            raise ConfigError(path, key, f"unknown service; services are {', '.join(services)}")
        if not isinstance(logins, list) or not all(isinstance(x, str) and x.strip() for x in logins):
            raise ConfigError(path, key, 'must be a list of logins like ["jdoe"]')
        members[service] = tuple(x.strip() for x in logins)
    reminder_keys = ("lead_time_hours", "review_due_days", "conflict_horizon_days", "interval_seconds")
    reminders = _known_keys(path, data, "reminders", reminder_keys)
    lead = _int(path, "reminders.lead_time_hours", reminders.get("lead_time_hours", 24), 1, 24 * 30)
    review = _int(path, "reminders.review_due_days", reminders.get("review_due_days", 5), 1, 365)
    horizon = _int(
        path, "reminders.conflict_horizon_days", reminders.get("conflict_horizon_days", 60), 1, 730
    )
    interval = _int(path, "reminders.interval_seconds", reminders.get("interval_seconds", 300), 10, 86400)
    templates: dict[str, ChangeTemplate] = {}
    for key, body in _array_of_tables(path, data, "templates"):
        _check_keys(path, body, key, _TEMPLATE_KEYS)
        code = body.get("code")
        if not isinstance(code, str) or not re.fullmatch(r"[a-z0-9_-]{1,40}", code):
            raise ConfigError(
                path, f"{key}.code", "needs a lower-case code of letters, digits, - or _ (1-40)"
            )
        if code in templates:
            raise ConfigError(path, f"{key}.code", f"template {code!r} is defined twice")
        texts = {}
        for name in ("title", "implementation_plan", "backout_plan", "test_plan"):
            value = body.get(name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(path, f"{key}.{name}", "must be a non-empty text")
            texts[name] = value.strip()
        if len(texts["title"]) > 200:
            raise ConfigError(path, f"{key}.title", "must be at most 200 characters")
        risk = body.get("risk", "low")
        if risk not in ("low", "medium"):
            raise ConfigError(
                path, f"{key}.risk", f'must be "low" or "medium" (a pre-approved change), not {risk!r}'
            )
        template_services = body.get("services")
        if not isinstance(template_services, list) or not template_services:
            raise ConfigError(path, f"{key}.services", "must list the services it may be used on")
        for service in template_services:
            if service not in services:
                known = ", ".join(services)
                raise ConfigError(
                    path, f"{key}.services", f"unknown service {service!r}; services are {known}"
                )
        duration = _int(path, f"{key}.duration_minutes", body.get("duration_minutes"), 1, 7 * 1440)
        templates[code] = ChangeTemplate(
            code=code,
            title=texts["title"],
            risk=risk,
            services=tuple(template_services),
            duration_minutes=duration,
            implementation_plan=texts["implementation_plan"],
            backout_plan=texts["backout_plan"],
            test_plan=texts["test_plan"],
        )
    emergency = _known_keys(path, data, "emergency", ("cab",))
    raw_cab = emergency.get("cab", [])
    if not isinstance(raw_cab, list) or not all(
        isinstance(x, str) and x.strip() and not any(c.isspace() for c in x.strip()) for x in raw_cab
    ):
        raise ConfigError(path, "emergency.cab", 'must be a list of logins like ["jdoe", "asmith"]')
    emergency_cab = tuple(x.strip() for x in raw_cab)
    twice = sorted({x for x in emergency_cab if emergency_cab.count(x) > 1})
    if twice:
        raise ConfigError(path, "emergency.cab", f"names {', '.join(twice)} more than once")
    conflict_rules = _known_keys(path, data, "conflicts", ("same_service",))
    same_service = conflict_rules.get("same_service", "warning")
    if same_service not in ("warning", "conflict"):
        raise ConfigError(
            path, "conflicts.same_service", f'must be "warning" or "conflict", not {same_service!r}'
        )
    impact = _known_keys(path, data, "impact", ("failed_days", "incident_days"))
    slots = _known_keys(path, data, "slots", ("horizon_days", "step_minutes"))
    implementation = _known_keys(path, data, "implementation", ("early_start_minutes",))
    early = _int(
        path,
        "implementation.early_start_minutes",
        implementation.get("early_start_minutes", 15),
        0,
        24 * 60,
    )
    return ChangePolicy(
        rule=rule,
        quorum=quorum,
        assign_by_support_group=by_group,
        members=members,
        lead_time_hours=lead,
        review_due_days=review,
        conflict_horizon_days=horizon,
        interval_seconds=interval,
        templates=templates,
        emergency_cab=emergency_cab,
        early_start_minutes=early,
        by_risk=_parse_by_risk(path, approval),
        risk=_parse_risk(path, data),
        cab=_parse_cab(path, data),
        same_service_severity=same_service,
        failed_days=_int(path, "impact.failed_days", impact.get("failed_days", 30), 1, 365),
        incident_days=_int(path, "impact.incident_days", impact.get("incident_days", 7), 1, 90),
        slot_horizon_days=_int(path, "slots.horizon_days", slots.get("horizon_days", 90), 1, 366),
        slot_step_minutes=_int(path, "slots.step_minutes", slots.get("step_minutes", 30), 5, 1440),
    )


def _parse_by_risk(path: Path, approval: dict) -> dict[str, ApprovalRule]:
    raw = approval.get("by_risk", {})
    if not isinstance(raw, dict):
        raise ConfigError(path, "approval.by_risk", 'must be a table like high = { rule = "all" }')
    result: dict[str, ApprovalRule] = {}
    for risk, body in raw.items():
        key = f"approval.by_risk.{risk}"
        if risk not in ("low", "medium", "high"):
            raise ConfigError(path, key, "unknown risk; the risks are low, medium and high")
        if not isinstance(body, dict):
            raise ConfigError(path, key, 'must be a table like { rule = "quorum", quorum = 1 }')
        _check_keys(path, body, key, ("rule", "quorum"))
        rule = body.get("rule", "all")
        if rule not in ("all", "quorum"):
            raise ConfigError(path, f"{key}.rule", f'must be "all" or "quorum", not {rule!r}')
        result[risk] = ApprovalRule(rule, _int(path, f"{key}.quorum", body.get("quorum", 1), 1, 50))
    return result


def _parse_risk(path: Path, data: dict) -> RiskPolicy:
    risk = _known_keys(path, data, "risk", ("medium", "high", "questions"))
    medium = _int(path, "risk.medium", risk.get("medium", 3), 1, 1000)
    high = _int(path, "risk.high", risk.get("high", 6), 1, 1000)
    if high <= medium:
        raise ConfigError(path, "risk.high", f"must be above risk.medium ({medium}), not {high}")
    questions: list[RiskQuestion] = []
    for key, body in _array_of_tables(path, risk, "questions"):
        key = f"risk.{key}"
        _check_keys(path, body, key, ("id", "text", "answers", "suggest"))
        qid = body.get("id")
        if not isinstance(qid, str) or not re.fullmatch(r"[a-z0-9_-]{1,40}", qid):
            raise ConfigError(path, f"{key}.id", "needs a lower-case id of letters, digits, - or _ (1-40)")
        if any(q.id == qid for q in questions):
            raise ConfigError(path, f"{key}.id", f"question {qid!r} is asked twice")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > 200:
            raise ConfigError(path, f"{key}.text", "must be a non-empty text of at most 200 characters")
        raw_answers = body.get("answers")
        if not isinstance(raw_answers, list) or len(raw_answers) < 2:
            raise ConfigError(path, f"{key}.answers", 'must list at least two { label = "...", points = N }')
        answers: list[RiskAnswer] = []
        for index, answer in enumerate(raw_answers):
            akey = f"{key}.answers[{index}]"
            if not isinstance(answer, dict):
                raise ConfigError(path, akey, 'must be a table like { label = "yes", points = 2 }')
            _check_keys(path, answer, akey, ("label", "points"))
            label = answer.get("label")
            if not isinstance(label, str) or not label.strip() or len(label) > 60:
                raise ConfigError(path, f"{akey}.label", "must be a non-empty text of at most 60 characters")
            if any(a.label == label.strip() for a in answers):
                raise ConfigError(path, f"{akey}.label", f"answer {label!r} is given twice")
            answers.append(
                RiskAnswer(label.strip(), _int(path, f"{akey}.points", answer.get("points"), 0, 100))
            )
        suggest = body.get("suggest")
        if suggest is not None and suggest not in RISK_SUGGESTIONS:
            raise ConfigError(
                path, f"{key}.suggest", f"must be one of {', '.join(RISK_SUGGESTIONS)}, not {suggest!r}"
            )
        if suggest == "services" and len(answers) < 3:
            raise ConfigError(
                path, f"{key}.answers", "a services question needs three answers (1, 2-3, more)"
            )
        questions.append(RiskQuestion(qid, text.strip(), tuple(answers), suggest))
    return RiskPolicy(tuple(questions), medium, high)


def _parse_cab(path: Path, data: dict) -> CabSchedule:
    cab = _known_keys(
        path, data, "cab", ("rrule", "start_local", "duration_minutes", "timezone", "cutoff_hours")
    )
    defaults = CabSchedule()
    # A meeting recurs as a maintenance window does (services/conflicts.validate_rrule checks the rest when
    # the meetings are expanded): at most daily, at its start time.
    rule = str(cab.get("rrule", defaults.rrule)).strip().upper().removeprefix("RRULE:")
    if not re.fullmatch(r"FREQ=(DAILY|WEEKLY|MONTHLY|YEARLY)(;[A-Z]+=[A-Z0-9,+-]+)*", rule) or re.search(
        r"BYHOUR|BYMINUTE|BYSECOND|DTSTART", rule
    ):
        raise ConfigError(
            path,
            "cab.rrule",
            f"{rule!r} is not a meeting rule: FREQ=DAILY, WEEKLY, MONTHLY or YEARLY (e.g. "
            f"FREQ=WEEKLY;BYDAY=TU), no BYHOUR, BYMINUTE, BYSECOND or DTSTART",
        )
    start_local = cab.get("start_local", defaults.start_local)
    if not isinstance(start_local, str) or not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", start_local):
        raise ConfigError(path, "cab.start_local", f"{start_local!r} is not a local time of day (HH:MM)")
    zone = cab.get("timezone", defaults.timezone)
    try:
        ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(path, "cab.timezone", f"unknown time zone {zone!r} (e.g. Europe/Berlin)") from None
    return CabSchedule(
        rrule=rule,
        start_local=str(start_local),
        duration_minutes=_int(path, "cab.duration_minutes", cab.get("duration_minutes", 60), 5, 1440),
        timezone=str(zone),
        cutoff_hours=_int(path, "cab.cutoff_hours", cab.get("cutoff_hours", 24), 0, 24 * 14),
    )


def _parse_replies(path: Path, data: dict) -> tuple[ReplyTemplate, ...]:
    _check_keys(path, data, "", ("templates",))
    templates: dict[str, ReplyTemplate] = {}
    for key, body in _array_of_tables(path, data, "templates"):
        _check_keys(path, body, key, ("name", "kind", "text"))
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(path, f"{key}.name", "needs a name (what the form's template list shows)")
        name = " ".join(name.split())  # one line in the list
        if len(name) > 60:
            raise ConfigError(path, f"{key}.name", "must be at most 60 characters")
        if name in templates:
            raise ConfigError(path, f"{key}.name", f"template {name!r} is defined twice")
        kind = body.get("kind", "both")
        if kind not in REPLY_KINDS:
            raise ConfigError(path, f"{key}.kind", f'must be "reply", "note" or "both", not {kind!r}')
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(path, f"{key}.text", "must be a non-empty text")
        _check_placeholders(path, f"{key}.text", name, text)
        # A multi-line string's closing quotes on a line of their own leave no empty line after the text.
        templates[name] = ReplyTemplate(name, kind, text.strip("\n"))
    return tuple(templates.values())


def _parse_problems(path: Path, data: dict) -> ProblemsConfig:
    _check_keys(path, data, "", ("candidates",))
    keys = ("min_incidents", "window_days", "by", "limit")
    candidates = _known_keys(path, data, "candidates", keys)
    default = ProblemsConfig()
    least = _int(
        path, "candidates.min_incidents", candidates.get("min_incidents", default.min_incidents), 2, 10_000
    )
    days = _int(path, "candidates.window_days", candidates.get("window_days", default.window_days), 1, 365)
    limit = _int(path, "candidates.limit", candidates.get("limit", default.limit), 1, 500)
    by = candidates.get("by", list(default.by))
    known = ", ".join(f'"{name}"' for name in CANDIDATE_CLUSTERINGS)
    if not isinstance(by, list) or not by:
        raise ConfigError(path, "candidates.by", f'must list one or more of {known}, e.g. ["ci"]')
    for name in by:
        if name not in CANDIDATE_CLUSTERINGS:
            raise ConfigError(path, "candidates.by", f"unknown clustering {name!r}; known: {known}")
    if len(set(by)) != len(by):
        raise ConfigError(path, "candidates.by", f"names a clustering twice: {by}")
    return ProblemsConfig(min_incidents=least, window_days=days, by=tuple(by), limit=limit)


def _check_placeholders(path: Path, key: str, name: str, text: str) -> None:
    """Refuse a placeholder of the template ``name`` that is not one of ``REPLY_PLACEHOLDERS``, a format
    or conversion after one, and a lone brace: rendering then never meets anything it cannot fill."""
    known = ", ".join(f"{{{p}}}" for p in REPLY_PLACEHOLDERS)
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError:
        raise ConfigError(
            path,
            key,
            f"template {name!r}: a {{ or }} that is no part of a placeholder; "
            "write {{ and }} for a brace that is text",
        ) from None
    for _text, field_name, spec, conversion in parts:
        if field_name is None:
            continue
        if field_name not in REPLY_PLACEHOLDERS:
            close = difflib.get_close_matches(field_name, REPLY_PLACEHOLDERS, n=1)
            hint = f" (did you mean {{{close[0]}}}?)" if close else ""
            raise ConfigError(
                path, key, f"template {name!r}: unknown placeholder {{{field_name}}}; known: {known}{hint}"
            )
        if spec or conversion:
            raise ConfigError(
                path, key, f"template {name!r}: write the placeholder as {{{field_name}}}, without a format"
            )


def _known_keys(path: Path, data: dict, table: str, keys: tuple[str, ...]) -> dict:
    """The table ``table`` (empty if absent), every key of it one of ``keys``."""
    body = data.get(table, {})
    if not isinstance(body, dict):
        raise ConfigError(path, table, "must be a table")
    _check_keys(path, body, table, keys)
    return body
