"""Kubernetes clusters: list, read, create (all nodes placed or none), scale, retry, status,
delete; their plugins, service-mesh links and bastions."""

from __future__ import annotations

from typing import Literal

from flask import url_for
from flask_login import current_user
from pydantic import Field

from portal.api import api, waiting
from portal.api.core import Access
from portal.api.listing import ApiFilter, list_query, run
from portal.api.problems import FORBIDDEN, SERVER_ERROR, ApiError, invalid, not_found
from portal.api.schemas import Id, Input, Query, Stamped, page_of
from portal.api.vms import ANTI_AFFINITY_HELP, AntiAffinity, Strategy, Vm
from portal.auth.access import administered_tenant_ids, visible_or_404
from portal.clusters import kubeconfig as kubeconfigs
from portal.clusters import service
from portal.clusters.lists import clusters as cluster_list
from portal.extensions import db
from portal.i18n import _
from portal.models import (
    CLUSTER_STATUSES,
    MESH_ROLES,
    PLUGIN_CATEGORIES,
    PLUGIN_STATUSES,
    BastionClusterAssociation,
    K8sCluster,
    K8sClusterPlugin,
    K8sClusterToServiceMesh,
    ServiceMesh,
    VirtualMachine,
)

TAGS = ("clusters",)
PluginName = Literal[tuple(sorted(service.CATALOGUE))]  # type: ignore[valid-type]
MeshRole = Literal[MESH_ROLES]  # type: ignore[valid-type]


class Plugin(Stamped):
    cluster_id: int
    name: str
    category: Literal[PLUGIN_CATEGORIES]  # type: ignore[valid-type]
    version: str
    status: Literal[PLUGIN_STATUSES]  # type: ignore[valid-type]


class MeshLink(Stamped):
    cluster_id: int
    service_mesh_id: int
    role: MeshRole


class Bastion(Stamped):
    cluster_id: int
    vm_id: int
    tenant_id: int


class Cluster(Stamped):
    name: str
    tenant_id: int
    group_id: int
    version: str
    status: Literal[CLUSTER_STATUSES]  # type: ignore[valid-type]
    description: str


class ClusterDetail(Cluster):
    nodes: list[Vm] = Field(description="Live nodes (not deleted), control planes first.")
    plugins: list[Plugin]
    service_meshes: list[MeshLink]
    bastions: list[Bastion]


ClusterPage = page_of(Cluster)
PluginPage, MeshLinkPage, BastionPage = page_of(Plugin), page_of(MeshLink), page_of(Bastion)


class PluginIn(Input):
    name: PluginName
    version: str = Field("", max_length=32, description="Default: the catalogue's version.")


class ClusterCreate(Input):
    name: str = Field(max_length=255, description="1–40 characters; nodes are named after it.")
    tenant_id: Id
    group_id: Id
    version: str = Field(max_length=32, description="A supported Kubernetes version.")
    control_planes: Literal[1, 3, 5] = 3
    control_plane_flavor_id: Id
    workers: int = Field(0, ge=0, le=service.MAX_WORKERS)
    worker_flavor_id: Id | None = Field(None, description="Required when workers > 0.")
    plugins: list[PluginIn] = Field(default_factory=list, max_length=len(service.CATALOGUE))
    primary_mesh_id: Id | None = None
    secondary_mesh_id: Id | None = None
    bastion: Literal["none", "existing", "new"] = "none"
    bastion_vm_id: Id | None = Field(None, description="bastion=existing: a VM of the tenant.")
    bastion_flavor_id: Id | None = Field(None, description="bastion=new: its flavor.")
    strategy: Strategy | None = None
    description: str = Field("", max_length=2000)
    anti_affinity: AntiAffinity = Field("soft", description=ANTI_AFFINITY_HELP)

    def build(self, check_names: bool = True) -> service.ClusterRequest:
        return service.build_request(
            current_user._get_current_object(),
            tenant_id=self.tenant_id, group_id=self.group_id, name=self.name,
            version=self.version, control_planes=self.control_planes,
            control_plane_flavor_id=self.control_plane_flavor_id, workers=self.workers,
            worker_flavor_id=self.worker_flavor_id,
            plugins=[(p.name, p.version) for p in self.plugins],
            primary_mesh_id=self.primary_mesh_id, secondary_mesh_id=self.secondary_mesh_id,
            bastion=self.bastion, bastion_vm_id=self.bastion_vm_id,
            bastion_flavor_id=self.bastion_flavor_id, strategy=self.strategy,
            description=self.description, check_names=check_names,
            anti_affinity=self.anti_affinity,
        )


class ClusterStatusIn(Input):
    status: Literal[service.OPERATOR_STATUSES]  # type: ignore[valid-type]


class ScaleIn(Input):
    workers: int = Field(ge=0, le=service.MAX_WORKERS, description="The new number of workers.")
    remove: list[Id] = Field(default_factory=list, max_length=service.MAX_WORKERS,
                             description="Scaling down: which workers to remove "
                                         "(default: the newest).")
    anti_affinity: AntiAffinity = Field(
        "soft", description=ANTI_AFFINITY_HELP + " Scaling up: the cluster's live nodes "
        "count as members of the set.")


class PluginChange(Input):
    version: str | None = Field(None, max_length=32)
    status: Literal[PLUGIN_STATUSES] | None = None  # type: ignore[valid-type]


class MeshLinkIn(Input):
    service_mesh_id: Id
    role: MeshRole = "primary"


class MeshLinkChange(Input):
    role: MeshRole


class BastionIn(Input):
    vm_id: Id


ClusterQuery = list_query("ClusterQuery", cluster_list, (
    ApiFilter("status", "status", Literal[CLUSTER_STATUSES]),  # type: ignore[valid-type]
    ApiFilter("tenant_id", "tenant", int, "Only this tenant's clusters."),
))


def visible_cluster(cluster_id: int) -> K8sCluster:
    return visible_or_404(K8sCluster, cluster_id)


def managed_cluster(cluster_id: int) -> K8sCluster:
    """A cluster the user may change: tenant admins only their own tenants'."""
    cluster = visible_cluster(cluster_id)
    allowed = administered_tenant_ids()
    if allowed is not None and cluster.tenant_id not in allowed:
        raise not_found()
    return cluster


def detail(cluster: K8sCluster) -> ClusterDetail:
    db.session.refresh(cluster)
    return ClusterDetail.model_validate({
        **Cluster.model_validate(cluster).model_dump(),
        "nodes": service.cluster_nodes(cluster),
        "plugins": cluster.plugins,
        "service_meshes": cluster.mesh_links,
        "bastions": cluster.bastion_links,
    })


def _user():
    return current_user._get_current_object()


@api.operation("GET", "/clusters", summary="List clusters", tags=TAGS,
               access=Access("clusters"), query=ClusterQuery, response=ClusterPage)
def list_clusters(query):
    """Clusters the token may see; filters as on the cluster list page."""
    return run(cluster_list, query)


ClusterWait = waiting.wait_query("ClusterWait", CLUSTER_STATUSES)
CLUSTER_FINAL = ("error", "deleted")


@api.operation("GET", "/clusters/{cluster_id}", summary="Get a cluster", tags=TAGS,
               access=Access("clusters"), query=ClusterWait, response=ClusterDetail,
               headers=waiting.HEADERS)
def get_cluster(cluster_id: int, query):
    """With ``wait_for``, answers once the cluster has that status; ``error`` and
    ``deleted`` are final (Wait-Result ``final``)."""
    cluster, headers = waiting.read(K8sCluster, visible_cluster(cluster_id), query,
                                    CLUSTER_FINAL)
    return detail(cluster), headers


@api.operation("POST", "/clusters", summary="Create a cluster", tags=TAGS,
               access=Access("clusters", "create"), body=ClusterCreate, response=ClusterDetail,
               status=201, errors=(409,))
def create_cluster(body: ClusterCreate):
    """Every node (and a new bastion) placed in one transaction with the cluster, its
    plugins and mesh links, or nothing (409 with the refusal's code and numbers).
    Control planes go on distinct servers, and distinct racks where the group allows."""
    cluster = service.create_cluster(body.build(), _user())
    return detail(cluster), {"Location": url_for("api.get_cluster", cluster_id=cluster.id)}


@api.operation("PATCH", "/clusters/{cluster_id}", summary="Set a cluster's status",
               tags=TAGS, access=Access("clusters", "status"), body=ClusterStatusIn,
               response=ClusterDetail, errors=(409,))
def set_cluster_status(cluster_id: int, body: ClusterStatusIn):
    """Maintenance, offline or active again: operators and the cluster's maintainers."""
    cluster = visible_cluster(cluster_id)
    if not service.may_set_status(cluster, _user()):
        raise ApiError(FORBIDDEN, _("Only operators and the cluster's maintainers set its status."))
    service.set_status(cluster, body.status, _user())
    return detail(cluster)


class ClusterDeleteQuery(Query):
    delete_bastion: bool = Field(
        True,
        description="Also delete the bastion created with the cluster (default true), unless "
        "it serves another live cluster. Bastions linked from existing VMs always stay.",
    )


@api.operation("DELETE", "/clusters/{cluster_id}", summary="Delete a cluster", tags=TAGS,
               access=Access("clusters", "delete"), query=ClusterDeleteQuery,
               response=ClusterDetail, status=202, errors=(409,))
def delete_cluster(cluster_id: int, query: ClusterDeleteQuery):
    """Every node goes through the agent; the cluster is ``deleted`` with its last node.
    ``?delete_bastion=false`` keeps the bastion that was created with the cluster (kept,
    it goes on holding quota)."""
    cluster = managed_cluster(cluster_id)
    service.delete_cluster(cluster, _user(), delete_bastion=query.delete_bastion)
    return detail(cluster)


@api.operation("POST", "/clusters/{cluster_id}/scale", summary="Scale a cluster's workers",
               tags=TAGS, access=Access("clusters", "create"), body=ScaleIn,
               response=ClusterDetail, status=202, errors=(409,))
def scale_cluster(cluster_id: int, body: ScaleIn):
    """Up: the missing workers are placed all or nothing (409 with the refusal when they do
    not fit). Down: the chosen (or newest) workers are deleted through the agent."""
    cluster = managed_cluster(cluster_id)
    service.scale_workers(
        cluster, body.workers, _user(), list(body.remove), anti_affinity=body.anti_affinity
    )
    return detail(cluster)


@api.operation("POST", "/clusters/{cluster_id}/retry", summary="Retry a cluster's failed nodes",
               tags=TAGS, access=Access("clusters", "create"), response=ClusterDetail,
               status=202, errors=(409,))
def retry_cluster(cluster_id: int):
    cluster = managed_cluster(cluster_id)
    service.retry_failed_nodes(cluster, _user())
    return detail(cluster)


@api.operation("GET", "/clusters/{cluster_id}/kubeconfig",
               summary="Download a cluster's kubeconfig", tags=TAGS, access=Access("clusters"),
               errors=(500,))
def get_kubeconfig(cluster_id: int):
    """The kubeconfig the agent returned when the control plane came up, as
    ``application/yaml`` (an attachment, never cached); every download is audited. For
    operators and the tenant's admins only (403 for maintainers); 404 while there is none;
    500 ``server_error`` saying why when the stored one cannot be decrypted (the encryption
    key changed since it was stored)."""
    cluster = visible_cluster(cluster_id)
    if not kubeconfigs.may_download(cluster, _user()):
        raise ApiError(FORBIDDEN, _("Only operators and the tenant's admins download a "
                                    "cluster's kubeconfig."))
    try:
        text = kubeconfigs.download(cluster, _user())
    except kubeconfigs.KubeconfigError as error:  # stored under another key: say so
        raise ApiError(SERVER_ERROR, str(error)) from None
    if text is None:
        raise not_found(_("Cluster %(name)s has no kubeconfig yet: the agent returns it "
                          "when the control plane is built.", name=cluster.name))
    return kubeconfigs.attachment(cluster, text)


# --- plugins -------------------------------------------------------------------------------

def _plugin(cluster: K8sCluster, plugin_id: int) -> K8sClusterPlugin:
    plugin = db.session.get(K8sClusterPlugin, plugin_id)
    if plugin is None or plugin.cluster_id != cluster.id:
        raise not_found(_("No such plugin on this cluster."))
    return plugin


@api.operation("GET", "/clusters/{cluster_id}/plugins", summary="List a cluster's plugins",
               tags=TAGS, access=Access("clusters"), response=PluginPage)
def list_plugins(cluster_id: int):
    plugins = visible_cluster(cluster_id).plugins
    return {"items": plugins, "total": len(plugins)}


@api.operation("POST", "/clusters/{cluster_id}/plugins", summary="Install a plugin",
               tags=TAGS, access=Access("clusters", "create"), body=PluginIn,
               response=Plugin, status=201, errors=(409,))
def add_plugin(cluster_id: int, body: PluginIn):
    """One network plugin per cluster; the version defaults to the catalogue's."""
    return service.add_plugin(managed_cluster(cluster_id), body.name, body.version, _user())


@api.operation("PATCH", "/clusters/{cluster_id}/plugins/{plugin_id}",
               summary="Change a plugin's version or status", tags=TAGS,
               access=Access("clusters", "create"), body=PluginChange, response=Plugin,
               errors=(409,))
def change_plugin(cluster_id: int, plugin_id: int, body: PluginChange):
    cluster = managed_cluster(cluster_id)
    plugin = _plugin(cluster, plugin_id)
    return service.update_plugin(cluster, plugin.id, _user(), version=body.version,
                                 status=body.status)


@api.operation("DELETE", "/clusters/{cluster_id}/plugins/{plugin_id}",
               summary="Remove a plugin", tags=TAGS, access=Access("clusters", "create"),
               status=204, errors=(409,))
def remove_plugin(cluster_id: int, plugin_id: int):
    cluster = managed_cluster(cluster_id)
    service.remove_plugin(cluster, _plugin(cluster, plugin_id).id, _user())


# --- service-mesh links --------------------------------------------------------------------

def _mesh_link(cluster: K8sCluster, link_id: int) -> K8sClusterToServiceMesh:
    link = db.session.get(K8sClusterToServiceMesh, link_id)
    if link is None or link.cluster_id != cluster.id:
        raise not_found(_("No such service-mesh link on this cluster."))
    return link


@api.operation("GET", "/clusters/{cluster_id}/service-meshes",
               summary="List a cluster's service-mesh links", tags=TAGS,
               access=Access("clusters"), response=MeshLinkPage)
def list_mesh_links(cluster_id: int):
    links = visible_cluster(cluster_id).mesh_links
    return {"items": links, "total": len(links)}


@api.operation("POST", "/clusters/{cluster_id}/service-meshes",
               summary="Bind a service mesh", tags=TAGS, access=Access("clusters", "create"),
               body=MeshLinkIn, response=MeshLink, status=201, errors=(409,))
def bind_mesh(cluster_id: int, body: MeshLinkIn):
    """At most one primary mesh per cluster."""
    if db.session.get(ServiceMesh, body.service_mesh_id) is None:
        raise invalid("service_mesh_id", _("Choose an existing service mesh."))
    return service.bind_mesh(managed_cluster(cluster_id), body.service_mesh_id, body.role,
                             _user())


@api.operation("PATCH", "/clusters/{cluster_id}/service-meshes/{link_id}",
               summary="Change a mesh link's role", tags=TAGS,
               access=Access("clusters", "create"), body=MeshLinkChange, response=MeshLink,
               errors=(409,))
def change_mesh_link(cluster_id: int, link_id: int, body: MeshLinkChange):
    cluster = managed_cluster(cluster_id)
    link = _mesh_link(cluster, link_id)
    service.change_mesh_role(cluster, link.id, body.role, _user())
    return link


@api.operation("DELETE", "/clusters/{cluster_id}/service-meshes/{link_id}",
               summary="Unbind a service mesh", tags=TAGS,
               access=Access("clusters", "create"), status=204, errors=(409,))
def unbind_mesh(cluster_id: int, link_id: int):
    cluster = managed_cluster(cluster_id)
    service.unbind_mesh(cluster, _mesh_link(cluster, link_id).id, _user())


# --- bastions ------------------------------------------------------------------------------

@api.operation("GET", "/clusters/{cluster_id}/bastions", summary="List a cluster's bastions",
               tags=TAGS, access=Access("clusters"), response=BastionPage)
def list_bastions(cluster_id: int):
    links = visible_cluster(cluster_id).bastion_links
    return {"items": links, "total": len(links)}


@api.operation("POST", "/clusters/{cluster_id}/bastions", summary="Add a bastion",
               tags=TAGS, access=Access("clusters", "create"), body=BastionIn,
               response=Bastion, status=201, errors=(409,))
def add_bastion(cluster_id: int, body: BastionIn):
    """A live VM of the cluster's tenant; one bastion may serve many clusters."""
    cluster = managed_cluster(cluster_id)
    vm = db.session.get(VirtualMachine, body.vm_id)
    if vm is None or vm.tenant_id != cluster.tenant_id or vm.status == "deleted":
        raise invalid("vm_id", _("Choose a live VM of the cluster's tenant."))
    return service.add_bastion(cluster, vm.id, _user())


@api.operation("DELETE", "/clusters/{cluster_id}/bastions/{link_id}",
               summary="Remove a bastion", tags=TAGS, access=Access("clusters", "create"),
               status=204)
def remove_bastion(cluster_id: int, link_id: int):
    cluster = managed_cluster(cluster_id)
    link = db.session.get(BastionClusterAssociation, link_id)
    if link is None or link.cluster_id != cluster.id:
        raise not_found(_("No such bastion on this cluster."))
    service.remove_bastion(cluster, link.id, _user())
