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
    "hypervisor_uri": "Hypervisor URI",
}

# object_type → the endpoint of its page, where one exists.
OBJECT_PAGES = {
    "rack": "racks.detail",
    "baremetal": "baremetals.detail",
    "baremetal_group": "groups.detail",
    "tenant": "tenants.detail",
    "quota": "tenants.quota_page",
    "flavor": "specs.detail",
    "virtual_machine": "vms.detail",
    "k8s_cluster": "clusters.detail",
    "service_mesh": "meshes.detail",
    "maintainer": "maintainers.detail",
    "maintainer_group": "maintainers.group_detail",
    "vm_group": "vm_groups.detail",
    "scaling_policy": "autoscaling.detail",
}


def field_label(name: str) -> str:
    return FIELD_LABELS.get(name) or name.replace("_", " ").capitalize()


def value_text(value: Any) -> str:
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(value_text(v) for v in value)
    return str(value)


def change_text(name: str, change: Any) -> str:
    """One changed field: "CPU limit 40 → 64", "CPU limit set to 64", "CPU % 25 → none"."""
    if not isinstance(change, dict) or not ({"from", "to"} & change.keys()):
        return f"{field_label(name)} {value_text(change)}"
    before, after = change.get("from"), change.get("to")
    if before in (None, "") and after not in (None, ""):
        return f"{field_label(name)} set to {value_text(after)}"
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
    endpoint = OBJECT_PAGES.get(event.object_type)
    if endpoint is None or event.object_id is None or event.action == "delete":
        return None
    return detail_url(endpoint, event.object_id)


def detail_url(endpoint: str, object_id: int) -> str | None:
    """The page of one object at ``endpoint`` (whatever its id argument is called), or None
    while no such page exists."""
    if endpoint not in current_app.view_functions:
        return None
    for rule in current_app.url_map.iter_rules(endpoint):
        if len(rule.arguments) == 1:
            return url_for(endpoint, **{next(iter(rule.arguments)): object_id})
    return None
