"""Errors the services raise; each message says what went wrong and what to do."""

from __future__ import annotations

from datetime import datetime


class ServiceError(Exception):
    """A refused action. Nothing was written.

    ``reason`` is the refusal in short, as a screen lists it beside an action it does not offer; the message
    (``str``) is what the person who tried is told, which may say more (which record, which roles they have).
    """

    @property
    def reason(self) -> str:
        return self.__dict__.get("_reason", str(self))

    def explained(self, message: str) -> ServiceError:
        """The same refusal (same type and attributes, same ``reason``) told as ``message``."""
        told = type(self).__new__(type(self))
        told.__dict__.update(self.__dict__)
        told.__dict__["_reason"] = self.reason
        told.args = (message,)
        return told


class NotFound(ServiceError):
    pass


class ValidationError(ServiceError):
    """A field's value breaks a rule; ``field`` names it so a form can show the message beside it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class InvalidTransition(ServiceError):
    """A status change the lifecycle does not allow; the message names the allowed ones."""

    def __init__(self, ref: str, current: str, wanted: str, allowed: tuple[str, ...]) -> None:
        self.current, self.wanted, self.allowed = current, wanted, allowed
        allowed_text = ", ".join(allowed) if allowed else "none (it is final)"
        super().__init__(
            f"{ref} cannot go from {current} to {wanted}; from {current} it may go to: {allowed_text}"
        )


class StaleEdit(ServiceError):
    """The record changed since the caller read it; saving would overwrite someone else's change."""

    def __init__(self, ref: str, expected: int, current: int, who: str | None, when: datetime | None) -> None:
        self.ref, self.expected, self.current, self.who, self.when = ref, expected, current, who, when
        by = f" by {who}" if who else ""
        at = f" at {when:%Y-%m-%d %H:%M:%S} UTC" if when else ""
        super().__init__(
            f"{ref} was changed{by}{at} after you opened it (version {expected}, now {current}); "
            f"reload it and apply your change again"
        )
