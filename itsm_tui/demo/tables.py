"""The demo's data tables: load curves, the priority and service mix, names, symptoms and column lists.

Pure data, no code: the generator and the ticket factory draw from these with the seeded random generator,
so changing a table changes every demo database built from a seed.
"""

from __future__ import annotations

HISTORY_DAYS = 90
FUTURE_DAYS = 45

WEEKDAY_LOAD = (1.25, 1.15, 1.1, 1.05, 0.9, 0.22, 0.18)
HOUR_LOAD = (
    0.08,
    0.05,
    0.04,
    0.04,
    0.05,
    0.1,
    0.3,
    0.8,
    1.6,
    2.0,
    1.9,
    1.6,
    1.1,
    1.5,
    1.7,
    1.5,
    1.2,
    0.8,
    0.5,
    0.35,
    0.25,
    0.2,
    0.15,
    0.1,
)
PRIORITY_MIX = {1: 0.015, 2: 0.075, 3: 0.34, 4: 0.42, 5: 0.15}
# median hours from the opening to the resolution, by priority, before the waits (to start, on a customer, on
# another group) that come on top
RESOLUTION_MEDIAN_HOURS = {1: 2.0, 2: 4.5, 3: 18.0, 4: 45.0, 5: 85.0}
SERVICE_LOAD = {
    "email": 0.2,
    "workplace": 0.3,
    "network": 0.1,
    "vpn": 0.1,
    "erp": 0.1,
    "crm": 0.06,
    "identity": 0.1,
    "storage": 0.04,
}

FIRST_NAMES = (
    "Anna",
    "Ben",
    "Chloe",
    "David",
    "Elif",
    "Felix",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Karin",
    "Luca",
    "Maya",
    "Niko",
    "Olga",
    "Paul",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Wim",
    "Yara",
    "Zoe",
    "Amir",
    "Bianca",
    "Carlos",
    "Dana",
    "Emil",
    "Fatima",
)
LAST_NAMES = (
    "Schmidt",
    "Meyer",
    "Novak",
    "Rossi",
    "Dubois",
    "Jansen",
    "Kowalski",
    "Larsen",
    "Silva",
    "Weber",
    "Fischer",
    "Moreau",
    "Horvat",
    "Berg",
    "Costa",
    "Nagy",
    "Lindqvist",
    "Keller",
    "Brandt",
    "Ortiz",
)
DEPARTMENTS = ("Finance", "Sales", "HR", "Logistics", "Marketing", "Legal", "Production", "Purchasing")

SYMPTOMS = {
    "email": [
        "Outlook does not sync the inbox",
        "Cannot send mail to external addresses",
        "Shared mailbox missing",
        "Calendar invitations arrive twice",
        "Mailbox full warning",
        "OWA shows error 500",
    ],
    "workplace": [
        "Printer on floor 3 jams",
        "Laptop does not boot",
        "Docking station not detecting monitors",
        "Phone headset crackles",
        "Laptop battery drains fast",
        "Keyboard keys stuck",
    ],
    "network": [
        "Wi-Fi drops in meeting rooms",
        "Slow network in building B",
        "Cannot reach file shares",
        "Switch port dead at desk 4.12",
        "Packet loss to data centre",
    ],
    "vpn": [
        "VPN disconnects every few minutes",
        "VPN login rejected",
        "VPN very slow from home",
        "VPN client update fails",
    ],
    "erp": [
        "ERP invoice posting fails",
        "ERP report times out",
        "Cannot release purchase order",
        "ERP session freezes on save",
        "Stock figures wrong in ERP",
    ],
    "crm": ["CRM dashboard empty", "Cannot export CRM contacts", "CRM login loop"],
    "identity": [
        "Account locked",
        "Password reset not working",
        "SSO asks for login repeatedly",
        "MFA token lost",
    ],
    "storage": ["Restore a deleted folder", "Share quota exceeded", "Backup job failed"],
}
REQUESTS = [
    "New laptop for new starter",
    "Access to shared drive",
    "Install Visio",
    "Add user to distribution list",
    "New mobile phone",
    "Change cost centre on account",
    "Second monitor",
    "Access to ERP module",
    "Information on VPN setup",
    "Create service account",
]
RESOLUTION_TEXT = {
    "fixed": "Root cause fixed and verified with the caller.",
    "workaround": "Applied the known workaround; caller can work again.",
    "configuration-change": "Corrected the configuration; confirmed working.",
    "user-education": "Walked the caller through the correct steps.",
    "replaced-hardware": "Replaced the faulty part; tested OK.",
    "duplicate": "Duplicate of an existing ticket.",
    "no-fault-found": "Could not reproduce; caller confirmed it works now.",
    "vendor-fix": "Vendor supplied a fix; applied and verified.",
    "fulfilled": "Request fulfilled and confirmed with the requester.",
}

# Why tickets wait, and for how long: (reason, weight, median hours); P1 and P2 wait a quarter as long.
PENDING = (("customer", 0.5, 4.0), ("vendor", 0.25, 24.0), ("change", 0.25, 48.0))
CANCEL_REASONS = (
    "Duplicate of another ticket",
    "Logged by mistake",
    "Requester withdrew the request",
    "Solved by the caller before work began",
)
REOPEN_REASONS = (
    "Caller reports the fault is back",
    "The fix did not survive a restart",
    "Only part of the request was delivered",
)
ESCALATION_REASONS = (
    "needs specialist diagnosis",
    "beyond first-line permissions",
    "fault confirmed on the service side",
)


# The columns the bulk inserts fill, in the order of the rows the factory makes.
TICKET_COLUMNS = (
    "id",
    "ref",
    "kind",
    "title",
    "description",
    "requester",
    "category",
    "service",
    "ci",
    "impact",
    "urgency",
    "priority",
    "status",
    "is_open",
    "pending_reason",
    "group_id",
    "first_group_id",
    "assignee_id",
    "created_by_id",
    "resolution_code",
    "resolution_note",
    "opened_at",
    "updated_at",
    "responded_at",
    "resolved_at",
    "closed_at",
    "cancelled_at",
    "sla_calendar",
    "paused_at",
    "resolution_started_at",
    "response_warn_at",
    "response_due_at",
    "resolution_warn_at",
    "resolution_due_at",
    "response_warned_at",
    "response_breached_at",
    "resolution_warned_at",
    "resolution_breached_at",
    "resolution_business_seconds",
    "reopen_count",
    "escalation_count",
    "reassignment_count",
    "version",
)
ENTRY_COLUMNS = ("id", "ticket_id", "author_id", "kind", "body", "created_at")
RATING_COLUMNS = ("ticket_id", "score", "comment", "rated_at", "recorded_by_id")
PAUSE_COLUMNS = ("ticket_id", "reason", "started_at", "ended_at")
