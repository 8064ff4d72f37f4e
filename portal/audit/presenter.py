"""Audit events in words: "CPU limit 40 → 64, by user ops-admin, at 2026-03-01 14:02 UTC".

The trail stores field names and raw values; this is the one place that turns them into
what a person reads, on the audit page and in every history panel.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, url_for

from portal.models import AuditEvent

FIELD_LABELS = {
    "cpu_limit": "CPU limit",
    "cpu_percent": "CPU %",
    "memory_limit": "Memory limit",
    "memory_percent": "Memory %",
    "storage_limit": "Storage limit",
    "storage_percent": "Storage %",
    "total_cpu": "Total CPU",
    "total_memory": "Total memory",
    "total_storage": "Total storage",
    "cpu": "CPU",
    "memory": "Memory (GiB)",
    "storage": "Storage (GiB)",
    "is_active": "Active",
    "mesh_type": "Mesh type",
    "baremetal": "Server",
    "group": "Group",
    "tenant": "Tenant",
    "bgp_asn": "BGP ASN",
    "dc": "DC",
    "height_u": "Height (U)",
    "rack_unit": "Rack unit",
    "size_u": "Size (U)",
}

# object_type → (endpoint, keyword of its id): where an event's object can be opened.
OBJECT_PAGES = {
    "rack": ("racks.detail", "rack_id"),
    "baremetal": ("baremetals.detail", "baremetal_id"),
    "baremetal_group": ("groups.detail", "group_id"),
    "tenant": ("tenants.detail", "tenant_id"),
    "quota": ("tenants.quota_page", "quota_id"),
    "flavor": ("specs.detail", "spec_id"),
    "virtual_machine": ("vms.detail", "vm_id"),
    "k8s_cluster": ("clusters.detail", "cluster_id"),
    "service_mesh": ("meshes.detail", "mesh_id"),
    "maintainer": ("maintainers.detail", "maintainer_id"),
}


def field_label(name: str) -> str:
    return FIELD_LABELS.get(name) or name.replace("_", " ").capitalize()


def value_text(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(value_text(v) for v in value)
    return str(value)


def change_text(name: str, change: Any) -> str:
    """One changed field: "CPU limit 40 → 64"; a value set at creation: "CPU limit 64"."""
    if not isinstance(change, dict) or not ({"from", "to"} & change.keys()):
        return f"{field_label(name)} {value_text(change)}"
    before, after = change.get("from"), change.get("to")
    if before is None and after is not None:
        return f"{field_label(name)} {value_text(after)}"
    return f"{field_label(name)} {value_text(before)} → {value_text(after)}"


def change_texts(event: AuditEvent) -> list[str]:
    return [change_text(name, change) for name, change in (event.changes or {}).items()]


def when_text(event: AuditEvent) -> str:
    return event.created_at.strftime("%Y-%m-%d %H:%M UTC")


def sentence(event: AuditEvent) -> str:
    """The whole event in one line, as the history panels show it."""
    what = ", ".join(change_texts(event)) or event.action.capitalize()
    return f"{what}, by user {event.username}, at {when_text(event)}"


def object_url(event: AuditEvent) -> str | None:
    """The page of the event's object, when such a page exists and the object may still."""
    page = OBJECT_PAGES.get(event.object_type)
    if page is None or event.object_id is None or event.action == "delete":
        return None
    endpoint, key = page
    if endpoint not in current_app.view_functions:
        return None
    return url_for(endpoint, **{key: event.object_id})
