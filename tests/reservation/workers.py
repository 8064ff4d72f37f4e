"""Workers that hammer the reservation layer from threads and from other processes."""

from __future__ import annotations

from collections import Counter


def reserve_many(app, tenant_id, group_id, spec_id, prefix, attempts, start=None):
    """Try `attempts` single-VM reservations; count outcomes by code."""
    from portal.extensions import db
    from portal.models import BaremetalGroup, Tenant, VirtualMachineSpecification
    from portal.scheduler.reservation import NodeSpec, PlacementRefused, reserve

    outcomes: Counter = Counter()
    with app.app_context():
        if start is not None:
            start.wait()
        for i in range(attempts):
            tenant = db.session.get(Tenant, tenant_id)
            group = db.session.get(BaremetalGroup, group_id)
            flavor = db.session.get(VirtualMachineSpecification, spec_id)
            try:
                reserve(tenant, group, [NodeSpec(f"{prefix}-{i}", "standalone", flavor)], user=None)
                outcomes["placed"] += 1
            except PlacementRefused as refused:
                outcomes[refused.refusal.code] += 1
        db.session.remove()
    return outcomes


def process_main(database_url, tenant_id, group_id, spec_id, prefix, attempts, start, results):
    """Entry point of a spawned process: its own app, engine and connections."""
    from portal import create_app
    from tests.conftest import IsolatedClient  # noqa: F401  (imports the test settings)

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url,
                      "PORTAL_AGENT": "off"})
    results.put(dict(reserve_many(app, tenant_id, group_id, spec_id, prefix, attempts, start)))
