"""The event log's list page pieces: text filters (kind prefix, instance, host), bounded counts, names.

``events`` sits below every domain app (an event's ``instance_id`` is a plain UUID, not a foreign key),
so it imports none: instance names are read through Django's app registry, and the quick kind-prefix
links come from the runtime providers (``powernode.runtimes``) plus the platform's own namespaces.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps as django_apps
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from apps.events.models import Event
from powernode import runtimes
from powernode.admin_kit import BoundedCountPaginator, TextInputFilter, is_uuid
from powernode.templatetags.powernode_admin import kind_class

#: quick prefixes that belong to no runtime (the SDWAN app's kinds)
PLATFORM_QUICK_PREFIXES = ("system.sdwan",)


def quick_prefixes() -> list[str]:
    """The kind prefixes offered as one-click filters: each runtime's, then the platform's."""
    prefixes = [p for provider in runtimes.providers() for p in provider.quick_prefixes]
    return list(dict.fromkeys([*prefixes, *PLATFORM_QUICK_PREFIXES]))


def _instances():  # noqa: ANN202 - the NodeInstance model, or None when the nodes app is not installed
    try:
        return django_apps.get_model("nodes", "NodeInstance")
    except LookupError:
        return None


def instance_names_for(events: list[Event]) -> dict[str, str]:
    """instance id (text) → name for the events about to be shown: one query per page, not per row."""
    ids = {e.instance_id for e in events if e.instance_id}
    model = _instances()
    if not ids or model is None:
        return {}
    return {str(pk): name for pk, name in model.objects.filter(pk__in=ids).values_list("id", "name")}


class KindPrefixFilter(TextInputFilter):
    title = "kind starts with"
    parameter_name = "kind_prefix"
    placeholder = "system.docker.handshake"

    @property
    def quick(self) -> list[str]:  # type: ignore[override]
        return quick_prefixes()

    def queryset(self, request, queryset):  # noqa: ANN001, ANN201
        value = (self.value() or "").strip()
        return queryset.filter(kind__startswith=value) if value else queryset


class InstanceFilter(TextInputFilter):
    title = "instance (name or id)"
    parameter_name = "instance"
    placeholder = "node-1"

    def queryset(self, request, queryset):  # noqa: ANN001, ANN201
        value = (self.value() or "").strip()
        if not value:
            return queryset
        if is_uuid(value):
            return queryset.filter(instance_id=value)
        model = _instances()
        instance_id = model.objects.filter(name=value).values_list("id", flat=True).first() if model else None
        return queryset.filter(instance_id=instance_id) if instance_id else queryset.none()


class HostFilter(TextInputFilter):
    title = "Docker host id"
    parameter_name = "host"
    placeholder = "host-…"

    def queryset(self, request, queryset):  # noqa: ANN001, ANN201
        value = (self.value() or "").strip()
        return queryset.filter(host_id=value) if value else queryset


class EventListMixin:
    paginator = BoundedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would scan the whole log
    list_per_page = 100
    count_cap = BoundedCountPaginator.CAP

    @admin.display(description="instance")
    def instance_name(self, obj: Event) -> str:
        names = getattr(obj, "_pn_names", None) or {}
        name = names.get(str(obj.instance_id), "") if obj.instance_id else ""
        return name or (str(obj.instance_id)[:8] if obj.instance_id else "")

    @admin.display(description="kind", ordering="kind")
    def kind_badge(self, obj: Event) -> str:
        return format_html('<span class="pn-kind pn-kind-{}">{}</span>', kind_class(obj.kind), obj.kind)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type:
        base = super().get_changelist(request, **kwargs)

        class EventChangeList(base):
            def get_results(self, request: HttpRequest) -> None:
                super().get_results(request)
                # one query for the names of the instances on this page
                names = instance_names_for(list(self.result_list))
                for event in self.result_list:
                    event._pn_names = names

        return EventChangeList

    def changelist_view(self, request: HttpRequest, extra_context=None):  # noqa: ANN001, ANN201
        return super().changelist_view(
            request,
            {
                **(extra_context or {}),
                "pn_count_cap": BoundedCountPaginator.CAP,
                "pn_quick_prefixes": quick_prefixes(),
            },
        )
