"""Views of one's own: a filter and a sort over a built-in view of the queue, saved under a name on a key.

A view belongs to the user who saved it; it may be shared with one of their groups, whose members then see
it and apply it, but only its owner changes or deletes it (:data:`GUARDS`, asked by the services and by the
screens alike through :func:`available_actions`). Its filter is the queue's filter text
(:func:`itsm_tui.services.queue.parse_filter`), kept as typed: ``assignee:me`` is whoever applies it.

A key is one digit or letter. It may not be a key the queue already has (the caller says which keys are in
force: the console's bindings, remapped by the user's key file, are no business of the services), and it is
unique among its owner's views. Which view a key applies in one person's queue is :func:`key_assignments`:
their own views first, then those shared with them.

Every change is audited (entity ``saved_view``): a shared view is what a group works from.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from itsm_tui.models import Group, SavedView, User, utc_or_now
from itsm_tui.services import audit
from itsm_tui.services.access import PermissionDenied
from itsm_tui.services.errors import NotFound, ServiceError, ValidationError
from itsm_tui.services.queue import SORTS, VIEWS, FilterError, check_assignees, parse_filter, sort_offered
from itsm_tui.services.users import Actor
from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from itsm_tui.config import DeskConfig

ENTITY = "saved_view"
KEYS = string.digits + string.ascii_letters
NAME_LENGTH = 40  # models.SavedView.name
FILTER_LENGTH = 500
SHARED_LIMIT = 500  # the views shared with one person's groups read at most (a group of 50 with 10 each)
ACTIONS = ("apply", "edit", "delete")


class NotOwner(PermissionDenied):
    """A change to a view someone else saved: only its owner may. A permission refused (recorded in the
    access trail as ``view.change_others``, as the command line's and the console's refusals are), which
    no role holds."""

    PERMISSION = "view.change_others"

    def __init__(self, message: str) -> None:  # no role has it: nothing to look up in PERMISSIONS
        ServiceError.__init__(self, message)
        self.permission, self.needed_roles = self.PERMISSION, ()


@dataclass(frozen=True)
class ViewInfo:
    """A saved view as the screens and the command line show it."""

    id: int
    name: str
    key: str
    base_view: str
    filter_text: str
    sort: str
    descending: bool
    owner_id: int
    owner_login: str
    shared_group: str | None  # the group's code
    created_at: datetime
    updated_at: datetime

    def mine(self, actor: Actor) -> bool:
        return self.owner_id == actor.id

    @property
    def sort_text(self) -> str:
        return SORTS[self.sort][0] + (" desc" if self.descending else "") if self.sort in SORTS else self.sort

    @property
    def base_title(self) -> str:
        return VIEWS[self.base_view].title if self.base_view in VIEWS else self.base_view


# --------------------------------------------------------------------------- guards


def _guard_apply(actor: Actor, view: ViewInfo) -> None:
    """Its owner, and the members of the group it is shared with, see and apply a view."""
    if view.owner_id != actor.id and not (
        view.shared_group is not None and view.shared_group in actor.group_codes
    ):
        raise NotFound(f"no view {view.name!r} of yours or shared with your groups")


def _guard_change(actor: Actor, view: ViewInfo) -> None:
    _guard_apply(actor, view)
    if view.owner_id != actor.id:
        raise NotOwner(f"{view.owner_login}'s view").explained(
            f"the view {view.name!r} is {view.owner_login}'s, shared with {view.shared_group}: only its "
            f"owner may change or delete it (save one of your own under another name)"
        )


GUARDS: dict[str, Callable[[Actor, ViewInfo], None]] = {
    "apply": _guard_apply,
    "edit": _guard_change,
    "delete": _guard_change,
}


def available_actions(actor: Actor, view: ViewInfo) -> dict[str, ServiceError | None]:
    """Each action on ``view``: None if ``actor`` may take it, else the refusal (its ``reason`` is the short
    form a screen shows beside an action it does not offer)."""
    result: dict[str, ServiceError | None] = {}
    for action in ACTIONS:
        try:
            GUARDS[action](actor, view)
        except ServiceError as exc:
            result[action] = exc
        else:
            result[action] = None
    return result


# --------------------------------------------------------------------------- reading


def _select() -> Select:
    return (
        select(SavedView, User.login, Group.code)
        .join(User, User.id == SavedView.owner_id)
        .outerjoin(Group, Group.id == SavedView.shared_group_id)
    )


def _info(row: SavedView, owner_login: str, group_code: str | None) -> ViewInfo:
    return ViewInfo(
        id=row.id,
        name=row.name,
        key=row.key,
        base_view=row.base_view,
        filter_text=row.filter_text,
        sort=row.sort,
        descending=row.descending,
        owner_id=row.owner_id,
        owner_login=owner_login,
        shared_group=group_code,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def list_views(session: Session, actor: Actor) -> list[ViewInfo]:
    """The actor's own views (by name), then those others shared with the actor's groups (by owner, name).

    Two statements, each on its own index: the owner's views by ``uq_saved_views_name`` (at most one per
    key), the shared ones by ``ix_saved_views_shared``, at most :data:`SHARED_LIMIT`."""
    own = session.execute(_select().where(SavedView.owner_id == actor.id).order_by(SavedView.name)).tuples()
    views = [_info(*row) for row in own]
    if actor.group_ids:
        shared = session.execute(
            _select()
            .where(
                SavedView.shared_group_id.in_(sorted(actor.group_ids)),
                SavedView.owner_id != actor.id,
            )
            .order_by(User.login, SavedView.name)
            .limit(SHARED_LIMIT)
        ).tuples()
        views += [_info(*row) for row in shared]
    return views


def key_assignments(actor: Actor, views: list[ViewInfo], reserved: Mapping[str, str]) -> dict[str, ViewInfo]:
    """Which view each key applies in ``actor``'s queue: their own views first, then the shared ones in the
    order :func:`list_views` gives; a key the queue has in force (``reserved``: key -> the binding holding it)
    or taken by an earlier view applies nothing of a later one."""
    assigned: dict[str, ViewInfo] = {}
    for view in sorted(views, key=lambda v: not v.mine(actor)):
        if view.key not in reserved and view.key not in assigned:
            assigned[view.key] = view
    return assigned


def _get(session: Session, view_id: int) -> ViewInfo:
    row = session.execute(_select().where(SavedView.id == view_id)).tuples().first()
    if row is None:
        raise NotFound(f"no view with id {view_id}")
    return _info(*row)


def find_view(session: Session, actor: Actor, name: str) -> ViewInfo:
    """The view called ``name`` that ``actor`` may apply: their own, else one shared with their groups;
    ``login/name`` names someone else's shared one. Exact names first, then regardless of case. Raises
    :class:`NotFound` naming the views there are, or, when several others share that name, their owners."""
    wanted = name.strip()
    owner, slash, rest = wanted.partition("/")
    views = list_views(session, actor)
    if slash:
        views, wanted = [v for v in views if v.owner_login == owner], rest.strip()
    for same in (lambda v: v.name == wanted, lambda v: v.name.casefold() == wanted.casefold()):
        found = [v for v in views if same(v)]
        mine = [v for v in found if v.mine(actor)]
        if mine:
            return mine[0]
        if len(found) == 1:
            return found[0]
        if found:
            names = ", ".join(f"{v.owner_login}/{v.name}" for v in found)
            raise NotFound(f"several views shared with you are called {wanted!r}: say whose, e.g. {names}")
    if not views:
        raise NotFound(f"no view {name.strip()!r}: you have no views of your own or shared with your groups")
    known = ", ".join(v.name if v.mine(actor) else f"{v.owner_login}/{v.name}" for v in views[:20])
    raise NotFound(f"no view {name.strip()!r}; your views: {known}")


# --------------------------------------------------------------------------- checking inputs


def _check_name(name: str) -> str:
    value = name.strip()
    if not value:
        raise ValidationError("name", "a view needs a name")
    if len(value) > NAME_LENGTH:
        raise ValidationError("name", f"a view's name has at most {NAME_LENGTH} characters")
    if strip_control(value, single_line=True) != value:
        raise ValidationError("name", "a view's name is one line of printable characters")
    if "/" in value:
        raise ValidationError("name", "a view's name may not hold '/' (login/name names someone else's)")
    return value


def _check_key(key: str, reserved: Mapping[str, str]) -> str:
    value = key.strip()
    if len(value) != 1 or value not in KEYS:
        raise ValidationError("key", f"a view's key is one digit or letter (0-9, a-z, A-Z), not {key!r}")
    if value in reserved:
        raise ValidationError("key", f"{value} is the queue's key for {reserved[value]}; choose another key")
    return value


def _check_filter(session: Session, config: DeskConfig | None, actor: Actor, text: str) -> str:
    value = " ".join(text.split())
    if len(value) > FILTER_LENGTH:
        raise ValidationError("filter", f"a view's filter has at most {FILTER_LENGTH} characters")
    if strip_control(value) != value:  # a NUL pasted in: PostgreSQL would refuse to store it
        raise ValidationError("filter", "a view's filter is one line of printable characters")
    try:
        check_assignees(session, parse_filter(value, actor, config))
    except FilterError as exc:
        raise ValidationError("filter", str(exc)) from None
    return value


def _check_sort(sort: str) -> str:
    value = sort.strip().lower()
    if value not in SORTS:
        raise ValidationError("sort", f"no sort {sort!r}; use one of {', '.join(SORTS)}")
    return value


def _check_sort_in(base_view: str, sort: str) -> None:
    """A sort the queue offers in that view (the "All tickets" view: those its indexes serve), as its
    sort keys offer them: a view may not sort the whole history by what no index holds."""
    if not sort_offered(base_view, sort):
        offered = [key for key in SORTS if sort_offered(base_view, key)]
        words = ", ".join(offered[:-1]) + f" or {offered[-1]}"
        raise ValidationError(
            "sort", f"the view {VIEWS[base_view].title!r} sorts only by {words}, not {sort}"
        )


def _check_base(base_view: str) -> str:
    value = base_view.strip().lower()
    if value not in VIEWS:
        raise ValidationError("view", f"no queue view {base_view!r}; use one of {', '.join(VIEWS)}")
    return value


def _group_id(session: Session, actor: Actor, code: str | None) -> tuple[int | None, str | None]:
    """The group to share with (by code, any case): one of the actor's own groups; None shares with nobody."""
    if code is None or not code.strip():
        return None, None
    wanted = code.strip()
    found = session.execute(
        select(Group.id, Group.code).where(Group.code.in_(sorted({wanted, wanted.upper(), wanted.lower()})))
    ).first()
    mine = ", ".join(sorted(actor.group_codes)) or "none"
    if found is None or found.id not in actor.group_ids:
        raise ValidationError(
            "group", f"you may share a view with a group you are in ({mine}), not {wanted!r}"
        )
    return found.id, found.code


def _taken(session: Session, actor: Actor, column, value: str, other_than: int | None) -> str | None:
    """The name of the actor's other view whose ``column`` is ``value`` (its unique index), if any."""
    query = select(SavedView.name).where(SavedView.owner_id == actor.id, column == value)
    if other_than is not None:
        query = query.where(SavedView.id != other_than)
    return session.scalar(query)


# --------------------------------------------------------------------------- writing


def save_view(
    session: Session,
    config: DeskConfig | None,
    actor: Actor,
    *,
    name: str,
    key: str,
    filter_text: str = "",
    sort: str = "sla",
    descending: bool = False,
    base_view: str = "all_open",
    share_with: str | None = None,
    reserved: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> ViewInfo:
    """Save a new view of ``actor``'s. ``reserved`` maps each key the queue has in force to what it does
    (refused as a view's key, naming it); ``share_with`` is a group code of the actor's."""
    now = utc_or_now(now)
    name = _check_name(name)
    key = _check_key(key, reserved or {})
    base_view, sort = _check_base(base_view), _check_sort(sort)
    _check_sort_in(base_view, sort)
    filter_text = _check_filter(session, config, actor, filter_text)
    group_id, group_code = _group_id(session, actor, share_with)
    if (other := _taken(session, actor, SavedView.name, name, None)) is not None:
        raise ValidationError("name", f"you have a view called {other!r} already; choose another name")
    if (other := _taken(session, actor, SavedView.key, key, None)) is not None:
        raise ValidationError("key", f"{key} is the key of your view {other!r} already; choose another key")
    view = SavedView(
        owner_id=actor.id,
        name=name,
        key=key,
        base_view=base_view,
        filter_text=filter_text,
        sort=sort,
        descending=descending,
        shared_group_id=group_id,
        created_at=now,
        updated_at=now,
    )
    session.add(view)
    _flush_unique(session, name, key)
    for field, value in _fields(view, group_code).items():
        audit.record_for(session, ENTITY, view, actor.id, now, "create", field, value)
    return _info(view, actor.login, group_code)


def _flush_unique(session: Session, name: str, key: str) -> None:
    """Write the view now; another of the owner's views saved at the same moment under the same name or key
    (the unique index refuses the later one, which checked before the earlier one was committed) is
    refused as the check would have refused it."""
    try:
        session.flush()
    except IntegrityError as exc:
        said = str(getattr(getattr(exc.orig, "diag", None), "constraint_name", None) or exc.orig)
        if "uq_saved_views_key" in said or said.endswith("saved_views.key"):
            raise ValidationError(
                "key", f"{key} is the key of another view of yours, saved a moment ago; choose another key"
            ) from None
        if "uq_saved_views_name" in said or said.endswith("saved_views.name"):
            raise ValidationError(
                "name", f"you saved a view called {name!r} a moment ago; choose another name"
            ) from None
        raise


def _fields(view: SavedView, group_code: str | None) -> dict[str, str | None]:
    """A view's fields as its audit trail names them."""
    return {
        "name": view.name,
        "key": view.key,
        "view": view.base_view,
        "filter": view.filter_text,
        "sort": view.sort + (" desc" if view.descending else ""),
        "shared_with": group_code,
    }


UNCHANGED = object()  # share_with's default in update_view: the sharing stays as it is


def update_view(
    session: Session,
    config: DeskConfig | None,
    actor: Actor,
    view_id: int,
    *,
    name: str | None = None,
    key: str | None = None,
    filter_text: str | None = None,
    sort: str | None = None,
    descending: bool | None = None,
    base_view: str | None = None,
    share_with: str | object | None = UNCHANGED,
    reserved: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> ViewInfo:
    """Change what is given of the actor's own view (rename, rekey, refilter, share with a group or, with
    ``share_with=None``, with nobody); each changed field is audited."""
    now = utc_or_now(now)
    info = _get(session, view_id)
    GUARDS["edit"](actor, info)
    view = session.get_one(SavedView, view_id)
    before = _fields(view, info.shared_group)
    group_code = info.shared_group
    # Checked before anything is set: a query would flush a half-made change (a duplicate key) first.
    if name is not None:
        name = _check_name(name)
        if (other := _taken(session, actor, SavedView.name, name, view_id)) is not None:
            raise ValidationError("name", f"you have a view called {other!r} already; choose another name")
    if key is not None:
        key = _check_key(key, reserved or {})
        if (other := _taken(session, actor, SavedView.key, key, view_id)) is not None:
            raise ValidationError("key", f"{key} is the key of your view {other!r}; choose another key")
    if filter_text is not None:
        filter_text = _check_filter(session, config, actor, filter_text)
    group_id = view.shared_group_id
    if share_with is not UNCHANGED:
        assert share_with is None or isinstance(share_with, str)
        group_id, group_code = _group_id(session, actor, share_with)
    if name is not None:
        view.name = name
    if key is not None:
        view.key = key
    if filter_text is not None:
        view.filter_text = filter_text
    view.shared_group_id = group_id
    if base_view is not None:
        view.base_view = _check_base(base_view)
    if sort is not None:
        view.sort = _check_sort(sort)
    _check_sort_in(view.base_view, view.sort)
    if descending is not None:
        view.descending = descending
    after = _fields(view, group_code)
    changed = {field: value for field, value in after.items() if value != before[field]}
    if changed:
        view.updated_at = now
        for field, value in changed.items():
            audit.record_for(session, ENTITY, view, actor.id, now, "update", field, value, before[field])
        _flush_unique(session, view.name, view.key)
    return _info(view, info.owner_login, group_code)


def delete_view(session: Session, actor: Actor, view_id: int, now: datetime | None = None) -> ViewInfo:
    """Delete the actor's own view; the audit trail keeps what it was."""
    now = utc_or_now(now)
    info = _get(session, view_id)
    GUARDS["delete"](actor, info)
    view = session.get_one(SavedView, view_id)
    audit.record_for(session, ENTITY, view, actor.id, now, "delete", "name", None, view.name)
    session.delete(view)
    session.flush()
    return info
