"""Audit events in words: "CPU limit 40 → 64, by user ops-admin, at 2026-03-01 22:02".

The trail stores field names and raw values; this is the one place that turns them into
what a person reads, on the audit page and in every history panel, in the reader's
language and the site's time zone. A field that holds another object's id ("rack_id": 10)
reads as that object's name, linked to its page (`<a href=/racks/10>tpe1-r01</a>`): the
names of every event of a page come from ONE query (`references(events)`), never one per
row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from flask import current_app, url_for
from markupsafe import Markup, escape
from sqlalchemy import literal, select, union_all

from portal.extensions import db
from portal.i18n import _, _l, _n
from portal.models import AuditEvent

FIELD_LABELS = {
    "name": _l("Name"),
    "serial": _l("Serial"),
    "status": _l("Status"),
    "region": _l("Region"),
    "location": _l("Location"),
    "description": _l("Description"),
    "contact": _l("Contact"),
    "network_notes": _l("Network notes"),
    "version": _l("Version"),
    "generation": _l("Generation"),
    "dimension": _l("Dimension"),
    "password": _l("Password"),
    "roles": _l("Roles"),
    "reason": _l("Reason"),
    "from": _l("From"),
    "cpu_limit": _l("CPU limit"),
    "cpu_percent": _l("CPU %"),
    "memory_limit": _l("Memory limit"),
    "memory_percent": _l("Memory %"),
    "storage_limit": _l("Storage limit"),
    "storage_percent": _l("Storage %"),
    "total_cpu": _l("Total CPU"),
    "total_memory": _l("Total memory"),
    "total_storage": _l("Total storage"),
    "cpu": "CPU",
    "memory": _l("Memory (GiB)"),
    "storage": _l("Storage (GiB)"),
    "is_active": _l("Active"),
    "mesh_type": _l("Mesh type"),
    "baremetal": _l("Server"),
    "group": _l("Group"),
    "tenant": _l("Tenant"),
    "bgp_asn": "BGP ASN",
    "dc": "DC",
    "height_u": _l("Height (U)"),
    "rack_unit": _l("Rack unit"),
    "size_u": _l("Size (U)"),
    "hypervisor_uri": "Hypervisor URI",
    "size": _l("Size"),
    "anti_affinity": _l("Anti-affinity"),
    "bastion": _l("Bastion"),
    # Autoscaling (portal/autoscaling/service.py AUDITED).
    "min_size": _l("Minimum size"),
    "max_size": _l("Maximum size"),
    "metric": _l("Metric"),
    "target": _l("Target value"),
    "tolerance": _l("Tolerance"),
    "mode": _l("Mode"),
    "scale_down_stabilization_seconds": _l("Scale-down stabilisation window (s)"),
    "warmup_seconds": _l("Warm-up (s)"),
    "servers": _l("Servers"),
    "token": _l("Token"),
    "user_locked_for": _l("Account locked for"),
    "addr_locked_for": _l("Address locked for"),
    "account_locked_for": _l("Account locked for"),
    "address_locked_for": _l("Address locked for"),
    # Maintainers and their assignments (portal/maintainers/service.py).
    "account": _l("Account"),
    "email": _l("Email"),
    "phone": _l("Phone"),
    "user_id": _l("Portal login"),
    "maintainer": _l("Maintainer"),
    "maintainer_group": _l("Maintainer group"),
    "responsibility": _l("Responsibility"),
    "member": _l("Member"),
    "manages": _l("Manages"),
    "assignments": _l("Assignments"),
    # Clusters, VM groups, jobs and evacuations.
    "control_planes": _l("Control planes"),
    "workers": _l("Workers"),
    "nodes": _l("Nodes"),
    "plugins": _l("Plugins"),
    "flavor": _l("Flavor"),
    "kubeconfig": "kubeconfig",
    "job": _l("Job"),
    "outcome": _l("Outcome"),
    "migrations": _l("Migrations"),
    "stuck": _l("VMs left in place"),
    "jobs": _l("Jobs"),
    # API tokens and webhooks.
    "scopes": _l("Scopes"),
    "expires_at": _l("Expires"),
    "url": "URL",
    "events": _l("Events"),
    "enabled": _l("Enabled"),
    "allow_private": _l("Private addresses allowed"),
    "secret": _l("Secret"),
}

# A field holding another object's id → (that object's type, its model's name).
REFERENCES = {
    "rack_id": ("rack", "Rack", _l("Rack")),
    "group_id": ("baremetal_group", "BaremetalGroup", _l("Group")),
    "baremetal_id": ("baremetal", "Baremetal", _l("Server")),
    "tenant_id": ("tenant", "Tenant", _l("Tenant")),
    "spec_id": ("flavor", "VirtualMachineSpecification", _l("Flavor")),
    "flavor_id": ("flavor", "VirtualMachineSpecification", _l("Flavor")),
    "cluster_id": ("k8s_cluster", "K8sCluster", _l("Cluster")),
    "vm_group_id": ("vm_group", "VmGroup", _l("VM group")),
    "maintainer_id": ("maintainer", "Maintainer", _l("Maintainer")),
    "maintainer_group_id": ("maintainer_group", "MaintainerGroup", _l("Maintainer group")),
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

# Fields whose values are statuses (shown translated, stored in English).
STATUS_FIELDS = {"status", "token", "outcome"}
# Fields whose stored values are codes with a reading of their own.
VALUE_LABELS = {
    "reason": {"unknown user": _l("unknown user"), "wrong password": _l("wrong password"),
               "account disabled": _l("account disabled")},
    "password": {"changed": _l("changed")},
    "kubeconfig": {"downloaded": _l("downloaded")},
    "secret": {"(new secret)": _l("a new secret")},
    "plugins": {"none": _l("none")},  # clusters created before plugins were a list
}
# Fields whose values are codes of the API, shown as code (webhook event names).
CODE_FIELDS = {"events"}
# Events stored before their numbers were stored apart: their English, read again.
CLUSTER_NODES = re.compile(r"^(\d+) control planes \+ (\d+) workers$")
TOKEN_WORDS = re.compile(
    r"^(?P<prefix>\S+…) \((?P<scopes>[a-z ]+?)(?:, tenant (?P<tenant>.+))?, until "
    r"(?P<until>\d{4}-\d\d-\d\d)\)$")
ASSIGNEE = re.compile(r"^(?P<who>.+) \((?P<what>.*)\)$")


def role_text(code: str) -> str:
    """A role as recorded at an account's creation: operator, tenant_admin:<tenant>,
    maintainer:<account>."""
    kind, _sep, whom = str(code).partition(":")
    if kind == "operator":
        return _("Operator")
    if kind == "tenant_admin":
        return _("Tenant admin · %(tenants)s", tenants=whom)
    if kind == "maintainer":
        return _("Maintainer · %(account)s", account=whom)
    return str(code)


# (object_type, id) → (name, page url or None)
Links = dict[tuple[str, int], tuple[str, str | None]]


def field_label(name: str) -> str:
    if name in REFERENCES:
        return str(REFERENCES[name][2])
    label = FIELD_LABELS.get(name)
    return str(label) if label is not None else name.replace("_", " ").capitalize()


def value_text(value: Any) -> str:
    if value is None or value == "":
        return _("none")
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list | tuple):
        return ", ".join(value_text(v) for v in value)
    return str(value)


def _referenced(name: str, value: Any) -> tuple[str, int] | None:
    if name in REFERENCES and isinstance(value, int) and not isinstance(value, bool):
        return REFERENCES[name][0], value
    return None


def _stored_words(name: str, value: str) -> str | None:
    """Values older events stored as English sentences, in the reader's language."""
    from portal.web.labels import scope_label, status_label

    if name == "nodes" and (match := CLUSTER_NODES.match(value)):
        control_planes, workers = (int(n) for n in match.groups())
        return _("%(control_planes)s + %(workers)s",
                 control_planes=_n("%(num)s control plane", "%(num)s control planes",
                                   control_planes),
                 workers=_n("%(num)s worker", "%(num)s workers", workers))
    if name == "token" and (match := TOKEN_WORDS.match(value)):
        scopes = " ".join(scope_label(s) for s in match["scopes"].split())
        if match["tenant"]:
            return _("%(token)s (%(scopes)s, tenant %(tenant)s, until %(until)s)",
                     token=match["prefix"], scopes=scopes, tenant=match["tenant"],
                     until=match["until"])
        return _("%(token)s (%(scopes)s, until %(until)s)", token=match["prefix"],
                 scopes=scopes, until=match["until"])
    if name == "maintainer" and (match := ASSIGNEE.match(value)):
        what = (_("no responsibility") if match["what"] == "no responsibility"
                else match["what"])
        return _("%(who)s (%(what)s)", who=_stored_words(name, match["who"]) or match["who"],
                 what=what)
    if name == "maintainer" and value.startswith("group "):
        return _("group %(name)s", name=value.removeprefix("group "))
    if name == "bastion" and value == "deleting":
        return status_label(value)
    return None


def _value(name: str, value: Any, links: Links | None) -> Markup:
    """A value as markup: a referenced object by its name (linked when it has a page), an
    object that is gone (or not looked up) by its number."""
    ref = _referenced(name, value)
    if ref is None and name in CODE_FIELDS and value not in (None, "", []):
        items = value if isinstance(value, list | tuple) else [value]
        return Markup(", ").join(Markup("<code>{}</code>").format(item) for item in items)
    if ref is None and name == "scopes" and isinstance(value, list):
        from portal.web.labels import scope_label

        return escape(" ".join(scope_label(item) for item in value))
    if ref is None and name == "job" and isinstance(value, str):
        from portal.web.labels import action_label

        return escape(action_label(value))
    if ref is None and isinstance(value, str) and (words := _stored_words(name, value)):
        return escape(words)
    if ref is None and name in STATUS_FIELDS and isinstance(value, str) and value:
        from portal.web.labels import status_label

        return escape(status_label(value))
    if ref is None and name in VALUE_LABELS and isinstance(value, str):
        label = VALUE_LABELS[name].get(value)
        return escape(str(label) if label is not None else value)
    if ref is None and name == "roles" and isinstance(value, list):
        return escape(_(", ").join(role_text(item) for item in value))
    if ref is None:
        return escape(value_text(value))
    if links is not None and ref in links:
        label, url = links[ref]
        if url:
            return Markup('<a href="{}">{}</a>').format(url, label)
        return escape(label)
    return escape(f"#{value}")


def _format(template: str, **values: Any) -> Markup:
    return Markup(escape(template)) % values


def change_text(name: str, change: Any, links: Links | None = None) -> Markup:
    """One changed field: "CPU limit 40 → 64", "CPU limit set to 64", "CPU % 25 → none"."""
    label = field_label(name)
    if not isinstance(change, dict) or not ({"from", "to"} & change.keys()):
        return _format(_("%(field)s %(value)s"), field=label, value=_value(name, change, links))
    before, after = change.get("from"), change.get("to")
    if before in (None, "") and after not in (None, ""):
        return _format(_("%(field)s set to %(value)s"), field=label,
                       value=_value(name, after, links))
    return _format(_("%(field)s %(before)s → %(after)s"), field=label,
                   before=_value(name, before, links), after=_value(name, after, links))


def change_texts(event: AuditEvent, links: Links | None = None) -> list[Markup]:
    return [change_text(name, change, links) for name, change in (event.changes or {}).items()]


def plain_changes(event: AuditEvent) -> str:
    """The changes as text (the CSV export)."""
    return "; ".join(Markup(text).striptags() for text in change_texts(event))


def when_text(event: AuditEvent) -> str:
    """The event's time in the site's zone, the reader's way (a stored naive UTC time)."""
    from portal.i18n import format_datetime

    # The same pattern in every language (numbers read the same in both), Babel's all the
    # same: it converts to the site's zone.
    return format_datetime(event.created_at, "yyyy-MM-dd HH:mm")


def sentence(event: AuditEvent, links: Links | None = None) -> Markup:
    """The whole event in one line, as the history panels show it."""
    from portal.web.labels import action_label

    # TRANSLATORS: between the changes of one event ("CPU limit 40 → 64, Memory % set to 50")
    what = Markup(escape(_(", "))).join(change_texts(event, links)) or escape(
        action_label(event.action).capitalize())
    return _format(_("%(what)s, by user %(user)s, at %(when)s"), what=what, user=event.username,
                   when=when_text(event))


def references(events: Iterable[AuditEvent]) -> Links:
    """The names and pages of every object the events' changes refer to by id, in one
    query (a UNION over the referenced tables), whatever the number of events."""
    import portal.models as models

    wanted: dict[str, set[int]] = {}
    for event in events:
        for name, change in (event.changes or {}).items():
            values = ([change.get("from"), change.get("to")] if isinstance(change, dict)
                      else [change])
            for value in values:
                ref = _referenced(name, value)
                if ref is not None:
                    wanted.setdefault(REFERENCES[name][1], set()).add(value)
    if not wanted:
        return {}
    kinds = {model: kind for kind, model, _label in REFERENCES.values()}
    selects = []
    for model_name, ids in sorted(wanted.items()):
        model = getattr(models, model_name)
        selects.append(select(literal(kinds[model_name]).label("kind"), model.id.label("id"),
                              model.name.label("name")).where(model.id.in_(sorted(ids))))
    statement = selects[0] if len(selects) == 1 else union_all(*selects)
    links: Links = {}
    for kind, object_id, label in db.session.execute(statement):
        endpoint = OBJECT_PAGES.get(kind)
        links[(kind, object_id)] = (label, detail_url(endpoint, object_id) if endpoint
                                    else None)
    return links


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
