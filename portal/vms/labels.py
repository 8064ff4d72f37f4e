"""The workloads' enum values as a reader sees them: VM roles, job actions, plugin
categories, mesh roles. The stored values and the API's codes stay English; pages show
`enum_label(kind, value)` (a template global registered by the VM blueprint) and filters
offer `labelled_choices(kind, values)`."""

from __future__ import annotations

# Named pgettext so that extraction (default keyword pgettext:1c,2) finds the contexts.
from flask_babel import lazy_pgettext as pgettext

from portal.i18n import _l, kept
from portal.web.labels import STATUS_LABELS, SWITCHED_LABELS

LABELS = {
    "vm_role": {
        "standalone": pgettext("vm role", "standalone"),
        "control-plane": pgettext("vm role", "control plane"),
        "worker": pgettext("vm role", "worker"),
        "management": pgettext("vm role", "management"),
        "bastion": pgettext("vm role", "bastion"),
    },
    "job_action": {
        "create": pgettext("job action", "create"),
        "delete": pgettext("job action", "delete"),
        "migrate": pgettext("job action", "migrate"),
    },
    "plugin_category": {
        "network": _l("network"),
        "monitoring": _l("monitoring"),
        "storage": _l("storage"),
        "ingress": _l("ingress"),
        "other": _l("other"),
    },
    "mesh_type": {"cilium": "cilium", "istio": "istio", "other": _l("other")},
    "mesh_role": {
        "primary": pgettext("mesh role", "primary"),
        "secondary": pgettext("mesh role", "secondary"),
    },
    "strategy": {
        "scarcity_fit": _l("scarcity fit (default)"),
        "shape_fit": _l("shape fit"),
        "best_fit": _l("best fit"),
        "worst_fit": _l("worst fit"),
    },
    # Statuses are the shell's (portal/web/labels.py), so every page words them alike.
    "status": STATUS_LABELS,
    # "active" of things switched on and off (a plugin, a mesh, a maintainer) reads 啟用.
    "switched": {**STATUS_LABELS, **SWITCHED_LABELS},
}


def enum_label(kind: str, value: str | None) -> str:
    """The reader's word for a stored value; an unknown value is shown as stored."""
    if value is None or value == "":
        return "—"
    # Once per request and value: a rack's page words two hundred roles.
    return kept((kind, value), lambda: str(LABELS.get(kind, {}).get(value, value)))


def strategy_choices():
    """The placement strategies for a wizard's select."""
    from portal.scheduler import STRATEGIES

    return [(n, LABELS["strategy"].get(n, n)) for n in sorted(STRATEGIES)]


def labelled_choices(kind: str, values: tuple[str, ...]):
    """Filter choices: the stored value, the reader's word (evaluated when offered)."""
    return lambda: [(v, enum_label(kind, v)) for v in values]
