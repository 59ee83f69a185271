"""Generic pieces every app's admin pages use: run an action as the logged-in operator, a paginator that
never counts a whole table, and list filters typed as text. Part of the kernel: imports no app."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest
from django.utils.functional import cached_property

from powernode.actors import Actor
from powernode.errors import ApplicationError, PermissionDenied
from powernode.registry import run_action


def run_as_operator(request: HttpRequest, name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``run_action`` as the logged-in operator; a missing permission becomes Django's 403.

    The admin has no rule of its own: a crafted POST without the permission is refused exactly as the
    HTTP API and MCP refuse it, and changes nothing.
    """
    try:
        return run_action(name=name, actor=Actor.for_user(request.user), payload=payload)
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message)


def run_for_each(
    model_admin: Any, request: HttpRequest, rows: Any, *, action: str, key: str, noun: str
) -> int:
    """An admin bulk action: ``action`` as the operator once per row (``{key: str(row.pk)}``); each refusal is
    shown on its row, the rest go on; ends with "N <noun> <done>." Returns how many succeeded."""
    done = 0
    for row in rows:
        try:
            run_as_operator(request, action, {key: str(row.pk)})
            done += 1
        except ApplicationError as exc:
            model_admin.message_user(request, f"{row}: {error_text(exc)}", messages.ERROR)
    model_admin.message_user(request, f"{done} {noun}.")
    return done


class ChangedThroughActions:
    """An admin for rows that change only through actions: listed and shown read-only, never added,
    edited or deleted by a model form (whatever model permissions the user holds).

    The view permission (or Django's plain change permission, which implies viewing) still opens the
    read-only page; the apps' own buttons and admin actions run registry actions with
    ``run_as_operator``, so the ``system.*`` permission decides, as in REST and MCP.
    """

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def error_text(exc: ApplicationError) -> str:
    return f"{exc.type_name}: {exc.message}"


def humanize_age(age: dt.timedelta | None) -> str:
    """ "12s ago", "5 min ago", "3 h ago": second-level precision where the admin's timesince says "0 minutes"."""
    if age is None:
        return "never"
    seconds = max(int(age.total_seconds()), 0)
    if seconds < 90:
        return f"{seconds}s ago"
    if seconds < 90 * 60:
        return f"{seconds // 60} min ago"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(str(text))
    except ValueError:
        return False
    return True


class BoundedCountPaginator(Paginator):
    """Counts at most ``CAP`` + 1 rows (an indexed LIMIT scan), never the whole table.

    The admin needs a count for its page links; past the cap the page links stop and the count reads
    "more than CAP". Filters narrow the scan further.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: self.CAP + 1].count()


class TextInputFilter(admin.SimpleListFilter):
    """A list filter rendered as a text box (values come from the operator, not a DISTINCT scan)."""

    template = "admin/powernode/input_filter.html"
    placeholder = ""
    quick: list[str] = []

    def lookups(self, request, model_admin):  # noqa: ANN001, ANN201 - Django's signature
        return []

    def has_output(self) -> bool:
        return True

    def choices(self, changelist):  # noqa: ANN001, ANN201
        # the form keeps every other query parameter (filters, search, ordering) as hidden inputs
        yield {
            "value": self.value() or "",
            "placeholder": self.placeholder,
            "parameter": self.parameter_name,
            "others": [(k, v) for k, v in changelist.params.items() if k != self.parameter_name],
            "clear_url": changelist.get_query_string(remove=[self.parameter_name]),
            "quick": [
                (prefix, changelist.get_query_string({self.parameter_name: prefix})) for prefix in self.quick
            ],
        }
