"""`flask --app wsgi seed demo`: a small, realistic estate with one login per role.

Deterministic (fixed random seed) and idempotent: when the demo estate is already there,
nothing is changed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sqlalchemy import select

from portal.audit.service import record
from portal.auth import service as accounts
from portal.extensions import db
from portal.models import (
    DIMENSIONS,
    Baremetal,
    BaremetalGroup,
    BaremetalGroupTenantQuota,
    BastionClusterAssociation,
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
    User,
    VirtualMachine,
    VirtualMachineSpecification,
)

MARKER_RACK = "tpe1-r01"

# (username, password, role description): printed by the command and listed in the README.
LOGINS = (
    ("ops-admin", "ops-admin-demo", "operator"),
    ("acme-admin", "acme-admin-demo", "tenant admin of acme and 研發中心"),
    ("oncall", "oncall-demo", "maintainer (Chen Mei-ling, member of Platform SRE)"),
)


@dataclass(frozen=True)
class Shape:
    model: str
    cpu: int
    memory: int
    storage: int
    size_u: int


SHAPES = {
    "c1": Shape("Dell R650 · compute", 64, 512, 3840, 1),
    "c2": Shape("Dell R750 · compute", 96, 768, 7680, 2),
    "m1": Shape("HPE DL380 · high-memory", 48, 1536, 3840, 2),
    "s1": Shape("Supermicro 6049 · storage", 32, 256, 61440, 4),
}

# region → dc → number of racks
LAYOUT = {"tw-north": {"tpe1": 5, "tpe2": 4}, "tw-south": {"khh1": 3}}

GROUPS = (
    ("tw-north-general", "geo:tw-north", "General-purpose compute in Taipei."),
    ("tw-north-highmem", "load:memory", "High-memory servers for databases and caches."),
    ("tw-south-general", "geo:tw-south", "General-purpose compute in Kaohsiung."),
    ("storage-pool", "load:storage", "Dense storage servers (object and block storage)."),
)

FLAVORS = (
    ("Standard-2C4G", 2, 4, 40, 1, "Small general purpose"),
    ("Standard-4C8G", 4, 8, 80, 1, "General purpose"),
    ("Standard-8C32G", 8, 32, 160, 2, "General purpose, generation 2"),
    ("Memory-8C64G", 8, 64, 200, 2, "Memory-optimised"),
    ("Compute-16C32G", 16, 32, 200, 2, "CPU-optimised"),
    ("Storage-4C16G-2T", 4, 16, 2000, 1, "Storage-heavy"),
)

TENANTS = (
    ("acme", "E-commerce platform team", "platform@acme.example"),
    ("globex", "Data engineering", "data@globex.example"),
    ("initech", "Internal tools", "it@initech.example"),
    ("umbrella", "Research computing", "hpc@umbrella.example"),
    ("研發中心", "台北研發中心（R&D Center, Taipei）", "rd@example.tw"),
    ("hooli", "Search and ads", "infra@hooli.example"),
)

# tenant → group → {dimension: ("limit" | "percent", value)}
QUOTAS = {
    "acme": {
        "tw-north-general": {
            "cpu": ("limit", 256),
            "memory": ("limit", 1024),
            "storage": ("limit", 20000),
        },
        "tw-south-general": {"cpu": ("percent", 30), "memory": ("percent", 30)},
    },
    "globex": {
        "tw-north-general": {
            "cpu": ("percent", 25),
            "memory": ("percent", 25),
            "storage": ("percent", 25),
        },
        "storage-pool": {"storage": ("limit", 200000)},
    },
    "initech": {
        "tw-south-general": {
            "cpu": ("limit", 64),
            "memory": ("limit", 256),
            "storage": ("limit", 4000),
        }
    },
    "umbrella": {
        "tw-north-highmem": {"cpu": ("percent", 50), "memory": ("percent", 50)},
        "storage-pool": {
            "cpu": ("limit", 64),
            "memory": ("limit", 512),
            "storage": ("percent", 40),
        },
    },
    "研發中心": {
        "tw-north-general": {
            "cpu": ("limit", 128),
            "memory": ("limit", 512),
            "storage": ("limit", 10000),
        },
        "tw-north-highmem": {"memory": ("limit", 2048)},
    },
    "hooli": {
        "tw-south-general": {
            "cpu": ("limit", 16),
            "memory": ("limit", 32),
            "storage": ("limit", 400),
        }
    },
}

MAINTAINERS = (
    ("Chen Mei-ling", "mlchen", "mlchen@ops.example", "+886 2 5550 1001"),
    ("Lin Chih-hao", "chlin", "chlin@ops.example", "+886 2 5550 1002"),
    ("王大明", "dmwang", "dmwang@ops.example", "+886 7 5550 2001"),
    ("Priya Natarajan", "pnatarajan", "priya@ops.example", "+886 2 5550 1003"),
    ("Tomás Ortega", "tortega", "tomas@ops.example", "+886 2 5550 1004"),
    ("Huang Yu-ting", "ythuang", "ythuang@ops.example", "+886 7 5550 2002"),
)

MAINTAINER_GROUPS = (
    ("Platform SRE", "Kubernetes platform on-call", "chlin", ("chlin", "mlchen", "pnatarajan")),
    (
        "DC Operations TPE",
        "Hands and eyes in the Taipei datacenters",
        "tortega",
        ("tortega", "mlchen"),
    ),
    ("DC Operations KHH", "Hands and eyes in Kaohsiung", "dmwang", ("dmwang", "ythuang")),
)


def seed_demo() -> str:
    if db.session.scalar(select(Rack.id).where(Rack.name == MARKER_RACK)) is not None:
        return "Demo data already present; nothing changed.\n" + _logins_text()
    rng = random.Random(20261127)
    racks = _racks()
    groups = {
        name: BaremetalGroup(name=name, dimension=dim, description=desc)
        for name, dim, desc in GROUPS
    }
    db.session.add_all(groups.values())
    servers = _servers(rng, racks, groups)
    flavors = {
        f[0]: VirtualMachineSpecification(
            name=f[0], cpu=f[1], memory=f[2], storage=f[3], generation=f[4], description=f[5]
        )
        for f in FLAVORS
    }
    flavors["Standard-2C4G-legacy"] = VirtualMachineSpecification(
        name="Standard-2C4G-legacy",
        cpu=2,
        memory=4,
        storage=20,
        generation=1,
        description="Retired: use Standard-2C4G",
        is_active=False,
    )
    db.session.add_all(flavors.values())
    tenants = {
        name: Tenant(name=name, description=desc, contact=contact)
        for name, desc, contact in TENANTS
    }
    db.session.add_all(tenants.values())
    for group in groups.values():
        _recount_group(group, servers)
    # The demo's passwords are published (README): the password policy does not apply.
    operator = accounts.create_user(
        "ops-admin", "ops-admin-demo", display_name="Ops Admin", operator=True,
        check_password=False,
    )
    quotas = _quotas(tenants, groups, operator)
    db.session.flush()

    placer = _Placer(servers, quotas)
    _standalone_vms(rng, placer, tenants, groups, flavors)
    clusters = _clusters(placer, tenants, groups, flavors)
    maintainers, mgroups = _maintainers()
    _assignments(racks, servers, groups, tenants, clusters, maintainers, mgroups, operator)

    accounts.create_user(
        "acme-admin", "acme-admin-demo", display_name="Acme Admin", tenants=("acme", "研發中心"),
        check_password=False,
    )
    accounts.create_user(
        "oncall", "oncall-demo", display_name="Chen Mei-ling", maintainer_account="mlchen",
        check_password=False,
    )
    for group in groups.values():
        _recount_group(group, servers)
    record(
        "seed",
        "estate",
        None,
        "demo data",
        {"servers": {"from": 0, "to": len(servers)}},
        user=operator,
    )
    db.session.commit()
    vm_count = db.session.query(VirtualMachine).count()
    # A week of simulated load, so that the charts are not empty on the first start.
    from portal.metrics.backfill import backfill

    history = backfill()
    return (
        f"Seeded the demo estate: {len(racks)} racks, {len(servers)} servers, "
        f"{len(groups)} groups, {len(tenants)} tenants, {vm_count} VMs, {len(clusters)} clusters, "
        f"{history:,} rows of measured history.\n"
        + _logins_text()
    )


def _logins_text() -> str:
    lines = ["Logins:"]
    lines += [f"  {user:<11} password {pw:<16} {role}" for user, pw, role in LOGINS]
    return "\n".join(lines)


def _racks() -> list[Rack]:
    racks = []
    asn = 65101
    for region, dcs in LAYOUT.items():
        for dc, count in dcs.items():
            for n in range(1, count + 1):
                racks.append(
                    Rack(
                        name=f"{dc}-r{n:02d}",
                        region=region,
                        dc=dc,
                        location=f"Hall {'A' if n <= 3 else 'B'}, row {n}",
                        height_u=42,
                        bgp_asn=asn,
                        network_notes=(
                            f"ToR: {dc}-r{n:02d}-tor1/tor2 (EVPN)\n"
                            f"BGP peers: {dc}-spine1, {dc}-spine2 (AS {asn - 100})\n"
                            f"VLANs: 110 mgmt, 210 tenant, 310 storage"
                        ),
                    )
                )
                asn += 1
    db.session.add_all(racks)
    return racks


def _servers(
    rng: random.Random, racks: list[Rack], groups: dict[str, BaremetalGroup]
) -> list[Baremetal]:
    servers = []
    for rack in racks:
        if rack.region == "tw-south":
            plan = ["c1"] * 5 + ["c2"] * 2
        elif rack.name.endswith(("r04", "r05")) and rack.dc == "tpe1":
            plan = ["s1"] * 3 + ["c1"] * 2
        elif rack.dc == "tpe2" and rack.name.endswith(("r03", "r04")):
            plan = ["m1"] * 4 + ["c1"] * 3
        else:
            plan = ["c1"] * 4 + ["c2"] * 3
        unit = 2
        for kind in plan:
            shape = SHAPES[kind]
            n = len(servers) + 1
            if kind == "s1":
                group = groups["storage-pool"]
            elif kind == "m1":
                group = groups["tw-north-highmem"]
            elif rack.region == "tw-south":
                group = groups["tw-south-general"]
            else:
                group = groups["tw-north-general"]
            status = "active"
            if n in (7, 23, 41, 66):
                status = "maintenance"
            elif n == 52:
                status = "offline"
            servers.append(
                Baremetal(
                    name=f"{rack.dc}-{kind}-{n:03d}",
                    serial=f"SN{rng.randrange(10**9, 10**10)}",
                    status=status,
                    region=rack.region,
                    dc=rack.dc,
                    rack=rack,
                    rack_unit=unit,
                    size_u=shape.size_u,
                    group=group,
                    total_cpu=shape.cpu,
                    total_memory=shape.memory,
                    total_storage=shape.storage,
                    available_cpu=shape.cpu,
                    available_memory=shape.memory,
                    available_storage=shape.storage,
                )
            )
            unit += shape.size_u + rng.choice((0, 0, 1))
    db.session.add_all(servers)
    return servers


def _recount_group(group: BaremetalGroup, servers: list[Baremetal]) -> None:
    members = [s for s in servers if s.group is group]
    for d in DIMENSIONS:
        setattr(group, f"total_{d}", sum(getattr(s, f"total_{d}") for s in members))
        setattr(group, f"available_{d}", sum(getattr(s, f"available_{d}") for s in members))


def _quotas(tenants, groups, operator: User) -> dict[tuple[str, str], BaremetalGroupTenantQuota]:
    quotas = {}
    for tenant_name, per_group in QUOTAS.items():
        for group_name, dims in per_group.items():
            quota = BaremetalGroupTenantQuota(
                tenant=tenants[tenant_name], group=groups[group_name], updated_by_user=operator
            )
            for d, (kind, value) in dims.items():
                setattr(quota, f"{d}_{kind}", value)
            quotas[(tenant_name, group_name)] = quota
    db.session.add_all(quotas.values())
    return quotas


class _Placer:
    """Seed-time placement: fills the emptiest server first within quota. Only the seed
    uses it, on an estate nobody else is touching."""

    def __init__(self, servers, quotas):
        self.servers = servers
        self.quotas = quotas
        self.used: dict[tuple[str, str], dict[str, int]] = {}

    def place(
        self, tenant, group, flavor, name, role="standalone", cluster=None, avoid=()
    ) -> VirtualMachine | None:
        quota = self.quotas[(tenant.name, group.name)]
        used = self.used.setdefault((tenant.name, group.name), dict.fromkeys(DIMENSIONS, 0))
        for d in DIMENSIONS:
            limit = quota.effective_limit(d)
            if limit is not None and used[d] + getattr(flavor, d) > limit:
                return None
        candidates = [
            s
            for s in self.servers
            if s.group is group
            and s.status == "active"
            and s not in avoid
            and all(getattr(s, f"available_{d}") >= getattr(flavor, d) for d in DIMENSIONS)
        ]
        if not candidates:
            return None
        server = max(candidates, key=lambda s: (s.available_cpu / s.total_cpu, s.name))
        for d in DIMENSIONS:
            setattr(
                server, f"available_{d}", getattr(server, f"available_{d}") - getattr(flavor, d)
            )
            used[d] += getattr(flavor, d)
        vm = VirtualMachine(
            name=name,
            tenant=tenant,
            baremetal=server,
            spec=flavor,
            cpu=flavor.cpu,
            memory=flavor.memory,
            storage=flavor.storage,
            role=role,
            cluster=cluster,
            status="active",
        )
        db.session.add(vm)
        return vm


def _standalone_vms(rng, placer, tenants, groups, flavors) -> None:
    plan = [
        ("acme", "tw-north-general", "web", ("Standard-4C8G", "Standard-8C32G"), 8),
        ("acme", "tw-south-general", "api", ("Standard-4C8G",), 4),
        ("globex", "tw-north-general", "etl", ("Compute-16C32G", "Standard-8C32G"), 6),
        ("globex", "storage-pool", "lake", ("Storage-4C16G-2T",), 6),
        ("initech", "tw-south-general", "tools", ("Standard-2C4G", "Standard-4C8G"), 5),
        ("umbrella", "tw-north-highmem", "sim", ("Memory-8C64G",), 6),
        ("研發中心", "tw-north-general", "實驗", ("Standard-8C32G", "Standard-4C8G"), 5),
        ("hooli", "tw-south-general", "ads", ("Standard-4C8G",), 3),
    ]
    for tenant, group, prefix, flavor_names, count in plan:
        for i in range(1, count + 1):
            flavor = flavors[rng.choice(flavor_names)]
            vm = placer.place(tenants[tenant], groups[group], flavor, f"{prefix}-{i:02d}")
            if vm is not None and tenant == "initech" and i == count:
                # One failed build, as an operator would find in any real estate.
                _release(vm)
                vm.status = "error"
                vm.status_message = "agent: image pull failed (simulated)"


def _release(vm: VirtualMachine) -> None:
    server = vm.baremetal
    for d in DIMENSIONS:
        setattr(server, f"available_{d}", getattr(server, f"available_{d}") + getattr(vm, d))


def _clusters(placer, tenants, groups, flavors) -> list[K8sCluster]:
    istio = ServiceMesh(
        name="istio-prod",
        mesh_type="istio",
        version="1.23.2",
        description="Shared Istio control plane for production clusters",
    )
    cilium = ServiceMesh(
        name="cilium-mesh",
        mesh_type="cilium",
        version="1.16.1",
        description="Cilium service mesh (sidecar-less)",
    )
    db.session.add_all([istio, cilium])
    specs = [
        (
            "acme",
            "acme-prod",
            "1.31.2",
            "Production storefront",
            3,
            4,
            [
                ("calico", "network", "3.28.1"),
                ("prometheus", "monitoring", "2.54.1"),
                ("ingress-nginx", "ingress", "1.11.2"),
            ],
            istio,
        ),
        (
            "研發中心",
            "rd-lab",
            "1.30.5",
            "研發測試叢集",
            1,
            2,
            [("cilium", "network", "1.16.1"), ("longhorn", "storage", "1.7.1")],
            cilium,
        ),
    ]
    clusters = []
    for tenant_name, name, version, desc, cps, workers, plugins, mesh in specs:
        tenant = tenants[tenant_name]
        group = groups["tw-north-general"]
        cluster = K8sCluster(
            name=name,
            tenant=tenant,
            group=group,
            version=version,
            status="active",
            description=desc,
        )
        db.session.add(cluster)
        used_racks: set[int] = set()
        for i in range(1, cps + 1):
            avoid = [s for s in placer.servers if s.rack is not None and id(s.rack) in used_racks]
            vm = placer.place(
                tenant,
                group,
                flavors["Standard-4C8G"],
                f"{name}-cp-{i}",
                role="control-plane",
                cluster=cluster,
                avoid=avoid,
            )
            used_racks.add(id(vm.baremetal.rack))
        for i in range(1, workers + 1):
            placer.place(
                tenant,
                group,
                flavors["Standard-8C32G"],
                f"{name}-worker-{i}",
                role="worker",
                cluster=cluster,
            )
        for plugin, category, plugin_version in plugins:
            db.session.add(
                K8sClusterPlugin(
                    cluster=cluster, name=plugin, category=category, version=plugin_version
                )
            )
        db.session.add(K8sClusterToServiceMesh(cluster=cluster, service_mesh=mesh, role="primary"))
        clusters.append(cluster)
    bastion = placer.place(
        tenants["acme"],
        groups["tw-north-general"],
        flavors["Standard-2C4G"],
        "acme-bastion",
        role="bastion",
    )
    db.session.flush()
    db.session.add(
        BastionClusterAssociation(
            vm_id=bastion.id, cluster_id=clusters[0].id, tenant_id=bastion.tenant_id
        )
    )
    return clusters


def _maintainers():
    people = {
        acct: Maintainer(name=name, account=acct, email=email, phone=phone)
        for name, acct, email, phone in MAINTAINERS
    }
    people["ythuang"].status = "inactive"
    db.session.add_all(people.values())
    mgroups = {}
    for name, desc, manager, members in MAINTAINER_GROUPS:
        group = MaintainerGroup(name=name, description=desc, manager=people[manager])
        for account in members:
            db.session.add(MaintainerToMaintainerGroup(maintainer=people[account], group=group))
        mgroups[name] = group
    db.session.add_all(mgroups.values())
    return people, mgroups


def _assignments(racks, servers, groups, tenants, clusters, people, mgroups, operator) -> None:
    db.session.flush()

    def assign(kind, obj, responsibility, person=None, group=None):
        db.session.add(
            ResourceMaintainer(
                resource_type=kind,
                resource_id=obj.id,
                responsibility=responsibility,
                maintainer_id=person.id if person else None,
                maintainer_group_id=group.id if group else None,
                created_by=operator.id,
            )
        )

    for rack in racks:
        team = mgroups["DC Operations KHH" if rack.region == "tw-south" else "DC Operations TPE"]
        assign("rack", rack, "hardware and cabling", group=team)
    assign("rack", racks[0], "network", person=people["tortega"])
    for server in servers:
        if server.status != "active":
            assign("baremetal", server, "repair follow-up", person=people["tortega"])
    for name in ("tw-north-general", "tw-north-highmem"):
        assign("baremetal_group", groups[name], "capacity planning", person=people["pnatarajan"])
    for cluster in clusters:
        assign("k8s_cluster", cluster, "primary on-call", group=mgroups["Platform SRE"])
    assign("k8s_cluster", clusters[0], "escalation", person=people["chlin"])
    assign("tenant", tenants["acme"], "account manager", person=people["mlchen"])
    mesh = db.session.scalar(select(ServiceMesh).where(ServiceMesh.name == "istio-prod"))
    assign("service_mesh", mesh, "mesh upgrades", group=mgroups["Platform SRE"])
