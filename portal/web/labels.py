"""Stored enum values as a reader sees them: statuses, audit actions, object kinds.

The database and the API keep the English values (`active`, `virtual_machine`, `update`);
pages show these labels, translated (docs/glossary.zh-TW.md, "Statuses"). An unknown value
is shown as it is stored, so a new status never breaks a page.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import lazy_pgettext

from portal.i18n import _l, kept

STATUS_LABELS = {
    "active": lazy_pgettext("status", "active"),
    "inactive": lazy_pgettext("status", "inactive"),
    "maintenance": lazy_pgettext("status", "maintenance"),
    "offline": lazy_pgettext("status", "offline"),
    "decommissioned": lazy_pgettext("status", "decommissioned"),
    "pending": lazy_pgettext("status", "pending"),
    "provisioning": lazy_pgettext("status", "provisioning"),
    "migrating": lazy_pgettext("status", "migrating"),
    "error": lazy_pgettext("status", "error"),
    "deleting": lazy_pgettext("status", "deleting"),
    "deleted": lazy_pgettext("status", "deleted"),
    "queued": lazy_pgettext("status", "queued"),
    "claimed": lazy_pgettext("status", "claimed"),
    "succeeded": lazy_pgettext("status", "succeeded"),
    "failed": lazy_pgettext("status", "failed"),
    "cancelled": lazy_pgettext("status", "cancelled"),
    "delivered": lazy_pgettext("status", "delivered"),
    "live": lazy_pgettext("status", "live"),
    "expired": lazy_pgettext("status", "expired"),
    "revoked": lazy_pgettext("status", "revoked"),
    "retired": lazy_pgettext("status", "retired"),
}
# "active" of things switched on and off (a plugin, a mesh, a maintainer, a flavor) reads
# 啟用, not 運作中 (the glossary).
SWITCHED = {"plugin", "mesh", "maintainer", "flavor", "webhook"}
SWITCHED_LABELS = {"active": lazy_pgettext("status", "enabled"),
                   "inactive": lazy_pgettext("status", "disabled")}

ACTION_LABELS = {
    "create": _l("create"),
    "update": _l("update"),
    "delete": _l("delete"),
    "status": _l("status change"),
    "place": _l("placement"),
    "provision": _l("provisioning"),
    "resize": _l("resize"),
    "retire": _l("retire"),
    "restore": _l("restore"),
    "revoke": _l("revoke"),
    "download": _l("download"),
    "evacuate": _l("evacuation"),
    "return_to_service": _l("return to service"),
    "login": _l("login"),
    "login_failed": _l("failed login"),
    "lockout": _l("lockout"),
    "scale": _l("scale"),
    "migrate": _l("migration"),
    "assign": _l("assignment"),
    "unassign": _l("unassignment"),
    "seed": _l("seed"),
}

OBJECT_LABELS = {
    "rack": _l("rack"),
    "baremetal": _l("server"),
    "baremetal_group": _l("server group"),
    "tenant": _l("tenant"),
    "quota": _l("quota"),
    "flavor": _l("flavor"),
    "virtual_machine": _l("virtual machine"),
    "k8s_cluster": _l("Kubernetes cluster"),
    "service_mesh": _l("service mesh"),
    "maintainer": _l("maintainer"),
    "maintainer_group": _l("maintainer group"),
    "resource_maintainer": _l("assignment"),
    "vm_group": _l("VM group"),
    "scaling_policy": _l("scaling policy"),
    "user": _l("user"),
    "api_token": _l("API token"),
    "webhook": _l("webhook"),
    "provision_job": _l("provisioning job"),
    "plugin": _l("plugin"),
    "estate": _l("estate"),
}

# API token scopes (SPEC 8.6).
SCOPE_LABELS = {"read": _l("read"), "write": _l("write"), "admin": _l("admin")}


def scope_label(value: str) -> str:
    label = SCOPE_LABELS.get(value)
    return str(label) if label is not None else value


def status_label(value: Any, kind: str | None = None) -> str:
    """A status in the reader's language, worked out once per request and status (a list
    page shows hundreds of them)."""
    return kept(("status", value, kind), lambda: _status_label(value, kind))


def _status_label(value: Any, kind: str | None) -> str:
    key = "" if value is None else str(value).lower()
    if kind in SWITCHED and key in SWITCHED_LABELS:
        return str(SWITCHED_LABELS[key])
    label = STATUS_LABELS.get(key)
    return str(label) if label is not None else ("" if value is None else str(value))


def action_label(value: str) -> str:
    label = ACTION_LABELS.get(value)
    return str(label) if label is not None else value.replace("_", " ")


def object_label(value: str) -> str:
    label = OBJECT_LABELS.get(value)
    return str(label) if label is not None else value.replace("_", " ")


def choices(labels: dict[str, Any], values: Any) -> list[tuple[str, str]]:
    """Filter choices whose labels are translated: (stored value, label) pairs."""
    return [(v, str(labels[v]) if v in labels else v) for v in values]


def init_labels(app: Flask) -> None:
    app.add_template_global(status_label)
    app.add_template_filter(action_label, "audit_action")
    app.add_template_filter(object_label, "object_kind")
    app.add_template_filter(scope_label, "scope_label")
