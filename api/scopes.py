"""The scope each thing an operator can do needs: one table for the API routes and the console.

An API route and the console page or form that does the same thing (read a job, export its
results, cancel it ...) look their scope up here under the same :class:`Action`, so the console
can never show or do what the API would refuse the same key (a rule in one place). A key with
``admin`` may do everything (`engine.accounts.tenants.Principal.allows`).
"""

from __future__ import annotations

from enum import StrEnum

from api.auth import require
from engine.accounts.tenants import Principal


class Action(StrEnum):
    """What a key asks to do, where the API and the console both offer it."""

    SEND = "send a job"
    LIST_JOBS = "list jobs"
    VIEW_JOB = "view a job"
    VIEW_RECIPIENTS = "view a job's recipients"
    SEARCH_RECIPIENTS = "search recipients by phone number across jobs"
    EXPORT_RESULTS = "export a job's results"
    EXPORT_UNMASKED = "export whole phone numbers"
    VIEW_STATEMENT = "view a statement"
    VIEW_ORDERS = "view a job's orders"
    EXPORT_ORDERS = "export a job's orders"
    CANCEL = "cancel a job"
    RESUME = "resume a job"
    RESEND = "resend a job's failures"
    REPLAY_CALLBACKS = "replay a job's status callbacks"
    VIEW_MONEY = "view the balance, prices and ledger"
    VIEW_SENDERS = "view sender numbers"
    REQUEST_SENDER = "request a sender number"
    VIEW_OPT_OUTS = "view the opt-out list"
    ADD_OPT_OUTS = "add numbers to the opt-out list"
    REMOVE_OPT_OUT = "remove a number from the opt-out list"
    VIEW_STATS = "view send statistics"
    VIEW_AUDIT = "view the audit log"


#: The scope each action needs.
NEEDS: dict[Action, str] = {
    Action.SEND: "send",
    Action.LIST_JOBS: "read",
    Action.VIEW_JOB: "read",
    Action.VIEW_RECIPIENTS: "read",
    Action.SEARCH_RECIPIENTS: "read",
    Action.EXPORT_RESULTS: "read",
    Action.EXPORT_UNMASKED: "export:unmasked",
    Action.VIEW_STATEMENT: "read",
    Action.VIEW_ORDERS: "read",
    Action.EXPORT_ORDERS: "read",
    Action.CANCEL: "send",
    Action.RESUME: "send",
    Action.RESEND: "send",
    Action.REPLAY_CALLBACKS: "send",
    Action.VIEW_MONEY: "read",
    Action.VIEW_SENDERS: "read",
    Action.REQUEST_SENDER: "admin",
    Action.VIEW_OPT_OUTS: "read",
    Action.ADD_OPT_OUTS: "send",
    Action.REMOVE_OPT_OUT: "admin",
    Action.VIEW_STATS: "read",
    Action.VIEW_AUDIT: "admin",
}


def allowed(action: Action, who: Principal) -> bool:
    """Whether ``who``'s key carries the scope ``action`` needs."""
    return who.allows(NEEDS[action])


def require_for(action: Action, who: Principal) -> None:
    """Raise 403 (`api.auth.AuthError`) naming the missing scope unless ``who`` may do ``action``."""
    require(NEEDS[action], who)
