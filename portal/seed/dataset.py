"""`flask --app wsgi seed dataset --size S|M|L`: the benchmark estates of SPEC section 7.

L is the reference: 2 regions × 3 dcs, 250 racks, 10,000 servers, 40 groups, 500 tenants,
2,000 quotas, 100,000 VMs, 2,000 clusters, 1,000 maintainers, 20,000 assignments. M is a
tenth of it and S a hundredth. Rows are generated in Python with consistent counters
(every server's available = total − its VMs, every group's sums) and written with bulk
INSERTs in one transaction, so L takes minutes, not hours. Deterministic for a size.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select, text

from portal.auth import service as accounts
from portal.extensions import db
from portal.models import (
    Baremetal,
    BaremetalGroup,
    BaremetalGroupTenantQuota,
    K8sCluster,
    K8sClusterPlugin,
    K8sClusterToServiceMesh,
    Maintainer,
    MaintainerGroup,
    MaintainerToMaintainerGroup,
    Rack,
    ResourceMaintainer,
    ServiceMesh,
    Tenant,
    VirtualMachine,
    VirtualMachineSpecification,
    utcnow,
)


@dataclass(frozen=True)
class Size:
    racks: int
    servers: int
    groups: int
    tenants: int
    quotas: int
    vms: int
    clusters: int
    maintainers: int
    assignments: int


SIZES = {
    "L": Size(250, 10_000, 40, 500, 2_000, 100_000, 2_000, 1_000, 20_000),
    "M": Size(25, 1_000, 8, 50, 200, 10_000, 200, 100, 2_000),
    "S": Size(5, 100, 4, 10, 20, 1_000, 20, 20, 200),
}
REGIONS = {"tw-north": ("tpe1", "tpe2", "tpe3"), "tw-south": ("khh1", "khh2", "tnn1")}
# 1U shapes: L puts 40 servers in each 42U rack.
SHAPES = ((64, 512, 3840, 1), (96, 768, 7680, 1), (48, 1536, 3840, 1), (128, 1024, 15360, 1))
FLAVORS = (
    ("Standard-2C4G", 2, 4, 40, 1),
    ("Standard-4C8G", 4, 8, 80, 1),
    ("Standard-8C32G", 8, 32, 160, 2),
    ("Memory-8C64G", 8, 64, 200, 2),
    ("Compute-16C32G", 16, 32, 200, 2),
    ("Storage-4C16G-2T", 4, 16, 2000, 1),
)
BATCH = 5_000


class DatasetError(RuntimeError):
    pass


def _bulk(model: Any, rows: list[dict]) -> None:
    for start in range(0, len(rows), BATCH):
        db.session.execute(insert(model), rows[start : start + BATCH])


def seed_dataset(size_name: str, seed: int = 7) -> str:
    size = SIZES[size_name]
    if db.session.scalar(select(func.count(Baremetal.id))):
        raise DatasetError("The database already holds servers: seed a dataset into an empty one.")
    rng = random.Random(seed)
    now = utcnow()

    # Racks, spread over 2 regions × 3 dcs.
    dcs = [(region, dc) for region, names in REGIONS.items() for dc in names]
    racks = []
    for i in range(size.racks):
        region, dc = dcs[i % len(dcs)]
        racks.append(
            {
                "id": i + 1,
                "name": f"{dc}-r{i + 1:04d}",
                "region": region,
                "dc": dc,
                "location": f"Hall {'ABCD'[i % 4]}, row {i // 4 % 30 + 1}",
                "height_u": 42,
                "bgp_asn": 4_200_000_000 + i,
                "network_notes": f"ToR {dc}-r{i + 1:04d}-tor1/2",
                "created_at": now,
                "updated_at": now,
            }
        )
    _bulk(Rack, racks)

    groups = [
        {
            "id": g + 1,
            "name": f"group-{g + 1:03d}",
            "description": "benchmark group",
            "dimension": f"geo:{dcs[g % len(dcs)][0]}"
            if g % 2
            else f"load:{['low', 'high'][g % 4 // 2]}",
            "total_cpu": 0,
            "total_memory": 0,
            "total_storage": 0,
            "available_cpu": 0,
            "available_memory": 0,
            "available_storage": 0,
            "created_at": now,
            "updated_at": now,
        }
        for g in range(size.groups)
    ]

    # Servers stacked in their racks bottom-up; a rack takes servers until it is full.
    servers = []
    per_rack = -(-size.servers // size.racks)
    for i in range(size.servers):
        rack = racks[i // per_rack]
        cpu, memory, storage, size_u = SHAPES[rng.randrange(len(SHAPES))]
        servers.append(
            {
                "id": i + 1,
                "name": f"{rack['dc']}-bm{i + 1:05d}",
                "serial": f"SN{i + 1:08d}",
                "status": "maintenance"
                if i % 97 == 0
                else ("offline" if i % 251 == 0 else "active"),
                "region": rack["region"],
                "dc": rack["dc"],
                "rack_id": rack["id"],
                "rack_height_u": 42,
                "rack_unit": None,
                "size_u": size_u,
                "group_id": i % size.groups + 1,
                "total_cpu": cpu,
                "total_memory": memory,
                "total_storage": storage,
                "available_cpu": cpu,
                "available_memory": memory,
                "available_storage": storage,
                "created_at": now,
                "updated_at": now,
            }
        )
    _stack_in_racks(servers)

    tenants = [
        {
            "id": t + 1,
            "name": f"tenant-{t + 1:04d}",
            "description": "benchmark tenant",
            "contact": f"owner{t + 1}@example.com",
            "created_at": now,
            "updated_at": now,
        }
        for t in range(size.tenants)
    ]

    flavors = [
        {
            "id": n + 1,
            "name": name,
            "cpu": c,
            "memory": m,
            "storage": s,
            "generation": g,
            "description": "",
            "is_active": True,
            "created_at": now,
            "updated_at": now,
        }
        for n, (name, c, m, s, g) in enumerate(FLAVORS)
    ]

    # Quotas: each tenant in quotas/tenants groups; absolute or percentage, generous enough
    # that the generated VMs fit.
    quota_pairs = []
    per_tenant = size.quotas // size.tenants
    for t in range(size.tenants):
        for k in range(per_tenant):
            quota_pairs.append((t + 1, (t * 7 + k * 3) % size.groups + 1))
    quota_pairs = list(dict.fromkeys(quota_pairs))

    servers_by_group: dict[int, list[dict]] = {}
    for server in servers:
        if server["status"] == "active":
            servers_by_group.setdefault(server["group_id"], []).append(server)

    vms: list[dict] = []
    usage: dict[tuple[int, int], list[int]] = {}

    def place(tenant_id, group_id, flavor, name, role="standalone", cluster_id=None, avoid=()):
        pool = servers_by_group.get(group_id, [])
        for _ in range(12):
            server = pool[rng.randrange(len(pool))]
            if server["id"] in avoid:
                continue
            if (
                server["available_cpu"] >= flavor["cpu"]
                and server["available_memory"] >= flavor["memory"]
                and server["available_storage"] >= flavor["storage"]
            ):
                break
        else:
            return None
        for d in ("cpu", "memory", "storage"):
            server[f"available_{d}"] -= flavor[d]
        used = usage.setdefault((tenant_id, group_id), [0, 0, 0])
        used[0] += flavor["cpu"]
        used[1] += flavor["memory"]
        used[2] += flavor["storage"]
        vms.append(
            {
                "id": len(vms) + 1,
                "name": name,
                "tenant_id": tenant_id,
                "baremetal_id": server["id"],
                "spec_id": flavor["id"],
                "cpu": flavor["cpu"],
                "memory": flavor["memory"],
                "storage": flavor["storage"],
                "k8s_cluster_id": cluster_id,
                "role": role,
                "status": "active" if rng.random() > 0.02 else "error",
                "status_message": "",
                "requested_by": None,
                "created_at": now - timedelta(minutes=len(vms)),
                "updated_at": now,
            }
        )
        if vms[-1]["status"] == "error":  # a failed build holds nothing
            for d in ("cpu", "memory", "storage"):
                server[f"available_{d}"] += flavor[d]
            used[0] -= flavor["cpu"]
            used[1] -= flavor["memory"]
            used[2] -= flavor["storage"]
        return vms[-1]

    # Clusters first (3 control planes on distinct servers + workers), then standalone VMs.
    clusters, plugins, links = [], [], []
    meshes = [
        {
            "id": m + 1,
            "name": f"mesh-{m + 1:02d}",
            "mesh_type": ("istio", "cilium")[m % 2],
            "version": ("1.23.2", "1.16.1")[m % 2],
            "status": "active",
            "description": "",
            "created_at": now,
            "updated_at": now,
        }
        for m in range(10)
    ]
    nodes_per_cluster = max(3, size.vms // 10 // size.clusters)
    for c in range(size.clusters):
        tenant_id, group_id = quota_pairs[c % len(quota_pairs)]
        cluster_id = c + 1
        clusters.append(
            {
                "id": cluster_id,
                "name": f"k8s-{c + 1:05d}",
                "tenant_id": tenant_id,
                "group_id": group_id,
                "version": ("1.31.2", "1.30.5", "1.29.9")[c % 3],
                "status": "active",
                "description": "",
                "created_at": now,
                "updated_at": now,
            }
        )
        used_servers: set[int] = set()
        for n in range(nodes_per_cluster):
            role = "control-plane" if n < 3 else "worker"
            vm = place(
                tenant_id,
                group_id,
                flavors[1 if role == "control-plane" else 2],
                f"k8s-{c + 1:05d}-{role[:2]}{n + 1}",
                role,
                cluster_id,
                used_servers if role == "control-plane" else (),
            )
            if vm is not None:
                used_servers.add(vm["baremetal_id"])
        for p, (name, category, version) in enumerate(
            [("calico", "network", "3.28.1"), ("prometheus", "monitoring", "2.54.1")]
        ):
            plugins.append(
                {
                    "id": c * 2 + p + 1,
                    "cluster_id": cluster_id,
                    "name": name,
                    "category": category,
                    "version": version,
                    "status": "active",
                    "created_at": now,
                    "updated_at": now,
                }
            )
        links.append(
            {
                "id": c + 1,
                "cluster_id": cluster_id,
                "service_mesh_id": c % 10 + 1,
                "role": "primary",
                "created_at": now,
                "updated_at": now,
            }
        )
    while len(vms) < size.vms:
        tenant_id, group_id = quota_pairs[rng.randrange(len(quota_pairs))]
        flavor = flavors[rng.randrange(5)]
        if place(tenant_id, group_id, flavor, f"vm-{len(vms) + 1:06d}") is None:
            continue

    quotas = []
    for q, (tenant_id, group_id) in enumerate(quota_pairs):
        used = usage.get((tenant_id, group_id), [0, 0, 0])
        row = {
            "id": q + 1,
            "tenant_id": tenant_id,
            "group_id": group_id,
            "cpu_limit": None,
            "cpu_percent": None,
            "memory_limit": None,
            "memory_percent": None,
            "storage_limit": None,
            "storage_percent": None,
            "updated_by": None,
            "created_at": now,
            "updated_at": now,
        }
        if q % 3 == 0:
            row["cpu_percent"], row["memory_percent"] = 50, 50
        else:
            row["cpu_limit"] = used[0] + rng.choice((16, 64, 256))
            row["memory_limit"] = used[1] + rng.choice((64, 256, 1024))
            row["storage_limit"] = used[2] + 10_000
        quotas.append(row)

    for server in servers:
        group = groups[server["group_id"] - 1]
        for d in ("cpu", "memory", "storage"):
            group[f"total_{d}"] += server[f"total_{d}"]
            group[f"available_{d}"] += server[f"available_{d}"]

    people = [
        {
            "id": p + 1,
            "name": f"Maintainer {p + 1}",
            "account": f"m{p + 1:05d}",
            "email": f"m{p + 1}@ops.example",
            "phone": f"+886 2 5550 {p:04d}",
            "status": "active",
            "user_id": None,
            "created_at": now,
            "updated_at": now,
        }
        for p in range(size.maintainers)
    ]
    teams = [
        {
            "id": g + 1,
            "name": f"team-{g + 1:03d}",
            "description": "",
            "manager_id": g * 10 + 1,
            "created_at": now,
            "updated_at": now,
        }
        for g in range(max(1, size.maintainers // 10))
    ]
    members = [
        {
            "id": p + 1,
            "maintainer_id": p + 1,
            "group_id": p // 10 + 1,
            "joined_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for p in range(len(teams) * 10)
        if p < size.maintainers
    ]
    kinds = (
        ("baremetal", len(servers)),
        ("virtual_machine", len(vms)),
        ("k8s_cluster", len(clusters)),
        ("rack", len(racks)),
    )
    assignments, seen = [], set()
    while len(assignments) < size.assignments:
        kind, count = kinds[len(assignments) % len(kinds)]
        resource_id = rng.randrange(count) + 1
        by_group = rng.random() < 0.5
        who = rng.randrange(len(teams) if by_group else len(people)) + 1
        key = (kind, resource_id, by_group, who)
        if key in seen:
            continue
        seen.add(key)
        assignments.append(
            {
                "id": len(assignments) + 1,
                "resource_type": kind,
                "resource_id": resource_id,
                "maintainer_id": None if by_group else who,
                "maintainer_group_id": who if by_group else None,
                "responsibility": "on-call",
                "created_by": None,
                "created_at": now,
                "updated_at": now,
            }
        )

    for model, rows in (
        (BaremetalGroup, groups),
        (Baremetal, servers),
        (Tenant, tenants),
        (VirtualMachineSpecification, flavors),
        (BaremetalGroupTenantQuota, quotas),
        (ServiceMesh, meshes),
        (K8sCluster, clusters),
        (VirtualMachine, vms),
        (K8sClusterPlugin, plugins),
        (K8sClusterToServiceMesh, links),
        (Maintainer, people),
        (MaintainerGroup, teams),
        (MaintainerToMaintainerGroup, members),
        (ResourceMaintainer, assignments),
    ):
        _bulk(model, rows)
    _advance_sequences()
    accounts.create_user("ops-admin", "ops-admin-bench", display_name="Ops Admin", operator=True)
    db.session.commit()
    if db.session.get_bind().dialect.name == "postgresql":
        # Fresh statistics, or the planner guesses from an empty table for a while; and the
        # visibility map autovacuum would set within minutes of a bulk load (until then an
        # index-only scan reads the table as well: the group page's usage sum 6 → 13 ms).
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    return (
        f"Seeded dataset {size_name}: {len(racks)} racks, {len(servers)} servers, "
        f"{len(groups)} groups, {len(tenants)} tenants, {len(quotas)} quotas, {len(vms)} VMs, "
        f"{len(clusters)} clusters, {len(people)} maintainers, {len(assignments)} assignments. "
        "Login: ops-admin / ops-admin-bench."
    )


def _stack_in_racks(servers: list[dict]) -> None:
    """Give every server the next free units of its rack, bottom-up; a server that no
    longer fits stays unracked."""
    next_unit: dict[int, int] = {}
    for server in servers:
        unit = next_unit.get(server["rack_id"], 1)
        if unit + server["size_u"] - 1 > 42:
            server.update(rack_id=None, rack_unit=None, rack_height_u=None)
            continue
        server["rack_unit"] = unit
        next_unit[server["rack_id"]] = unit + server["size_u"]


def _advance_sequences() -> None:
    """Rows were inserted with explicit ids: move PostgreSQL's sequences past them."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    for table in db.metadata.sorted_tables:
        if "id" in table.c:
            db.session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"GREATEST((SELECT MAX(id) FROM {table.name}), 1))"
                )
            )
