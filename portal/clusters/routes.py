from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.audit.service import history
from portal.auth.access import administered_tenant_ids, requires, visible_or_404
from portal.clusters import kubeconfig as kubeconfigs
from portal.clusters import service
from portal.clusters.forms import ClusterForm
from portal.clusters.lists import clusters
from portal.extensions import db
from portal.i18n import _, _l
from portal.metrics.panels import page_panel
from portal.models import K8sCluster, ServiceMesh, VirtualMachine
from portal.provisioning.jobs import JobError
from portal.scheduler.messages import refusal_message
from portal.scheduler.reservation import PlacementRefused
from portal.vms.forms import ANTI_AFFINITY_CHOICES
from portal.vms.labels import enum_label
from portal.vms.service import RequestInvalid, Unplaceable, wizard_options
from portal.web import list_page, render
from portal.web.forms import int_or_none, show_errors
from portal.web.forms import options as choices

bp = Blueprint("clusters", __name__, url_prefix="/clusters")

@bp.route("/")
@requires("clusters")
def list():  # noqa: A001
    return list_page(clusters, "clusters/list.html")


def _wizard_form() -> ClusterForm:
    form = ClusterForm(request.form if request.method == "POST" else request.args)
    opts = wizard_options(current_user, form.tenant_id.data, form.group_id.data)
    if form.tenant_id.data is None and opts.tenants:
        form.tenant_id.data = opts.tenants[0][0]
        opts = wizard_options(current_user, form.tenant_id.data, form.group_id.data)
    form.tenant_id.choices = choices(opts.tenants)
    form.group_id.choices = choices([(None, _("— choose a group —")), *opts.groups])
    versions = service.supported_versions()
    form.version.choices = choices((v, v) for v in versions)
    if not form.version.data:
        form.version.data = versions[0]
    flavor_choices = choices([(None, _("— choose a flavor —")), *opts.flavors])
    for field in (form.control_plane_flavor_id, form.worker_flavor_id, form.bastion_flavor_id):
        field.choices = flavor_choices
    meshes = db.session.execute(
        select(
            ServiceMesh.id, ServiceMesh.name, ServiceMesh.mesh_type, ServiceMesh.version
        ).order_by(ServiceMesh.name)
    ).all()
    mesh_choices = choices(
        [(None, _("None")), *((m.id, f"{m.name} ({m.mesh_type} {m.version})") for m in meshes)]
    )
    form.primary_mesh_id.choices = mesh_choices
    form.secondary_mesh_id.choices = mesh_choices
    vms = []
    if form.tenant_id.data is not None and any(t[0] == form.tenant_id.data for t in opts.tenants):
        vms = db.session.execute(
            select(VirtualMachine.id, VirtualMachine.name)
            .where(
                VirtualMachine.tenant_id == form.tenant_id.data,
                VirtualMachine.status.in_(("active", "provisioning")),
                VirtualMachine.k8s_cluster_id.is_(None),
            )
            .order_by(VirtualMachine.name)
        ).all()
    form.bastion_vm_id.choices = choices(
        [(None, _("— choose a VM —")), *((v.id, v.name) for v in vms)]
    )
    return form


def _chosen_plugins() -> list[tuple[str, str]]:
    source = request.form if request.method == "POST" else request.args
    return [(name, source.get(f"version_{name}", "")) for name in source.getlist("plugins")]


def _cluster_request(form: ClusterForm, check_names: bool = True) -> service.ClusterRequest:
    try:
        return service.build_request(
            current_user,
            tenant_id=form.tenant_id.data,
            group_id=form.group_id.data,
            name=form.name.data or "",
            version=form.version.data or "",
            control_planes=form.control_planes.data,
            control_plane_flavor_id=form.control_plane_flavor_id.data,
            workers=form.workers.data,
            worker_flavor_id=form.worker_flavor_id.data,
            plugins=_chosen_plugins(),
            primary_mesh_id=form.primary_mesh_id.data,
            secondary_mesh_id=form.secondary_mesh_id.data,
            bastion=form.bastion.data or "none",
            bastion_vm_id=form.bastion_vm_id.data,
            bastion_flavor_id=form.bastion_flavor_id.data,
            strategy=form.strategy.data,
            anti_affinity=form.anti_affinity.data,
            description=form.description.data or "",
            check_names=check_names,
        )
    except RequestInvalid as invalid:
        show_errors(form, invalid.errors)
        raise


def _preview_for(form: ClusterForm):
    if form.group_id.data is None or form.control_plane_flavor_id.data is None:
        return None
    try:
        return service.preview_cluster(_cluster_request(form, check_names=False))
    except RequestInvalid as invalid:
        # The reasons, live, rather than the starting hint.
        return Unplaceable([*invalid.errors.values()])


def _wizard_context(form: ClusterForm) -> dict:
    chosen = dict(_chosen_plugins())
    if request.method == "GET" and not request.args:
        chosen = {"calico": "", "prometheus": ""}  # sensible defaults for a new cluster
    return {
        "form": form,
        "preview": _preview_for(form),
        "catalogue": service.CATALOGUE,
        "chosen_plugins": chosen,
    }


@bp.route("/new", methods=["GET", "POST"])
@requires("clusters", "create")
def new():
    form = _wizard_form()
    if request.method == "POST" and request.form.get("action") == "create":
        form.validate()
        if not form.errors:
            try:
                cluster = service.create_cluster(_cluster_request(form), current_user)
            except RequestInvalid:
                pass
            except PlacementRefused as refused:
                flash(refusal_message(refused.refusal), "error")
            else:
                flash(_("Cluster %(cluster)s placed; its nodes are provisioning.",
                        cluster=cluster.name), "success")
                return redirect(url_for("clusters.detail", cluster_id=cluster.id))
    return render("clusters/new.html", "wizard", **_wizard_context(form))


@bp.route("/preview", methods=["POST"])
@requires("clusters", "create")
def preview():
    """The live plan of the whole cluster (HTMX): the same decision as creating it."""
    form = _wizard_form()
    return render("clusters/new.html", "preview", **_wizard_context(form))


def _cluster(cluster_id: int) -> K8sCluster:
    return visible_or_404(K8sCluster, cluster_id)


def _may_manage(cluster: K8sCluster) -> bool:
    allowed = administered_tenant_ids()
    return allowed is None or cluster.tenant_id in allowed


@bp.route("/<int:cluster_id>")
@requires("clusters")
def detail(cluster_id: int):
    cluster = _cluster(cluster_id)
    nodes = service.cluster_nodes(cluster)
    manage = _may_manage(cluster) and cluster.status not in ("deleting", "deleted")
    return render(
        "clusters/detail.html",
        "live",
        cluster=cluster,
        nodes=nodes,
        roles={role: [n for n in nodes if n.role == role] for role in ("control-plane", "worker")},
        racks=len(
            {n.baremetal.rack_id for n in nodes if n.role == "control-plane" and n.baremetal}
        ),
        events=history("k8s_cluster", cluster.id),
        manage=manage,
        may_set_status=service.may_set_status(cluster, current_user),
        catalogue=service.CATALOGUE,
        meshes=db.session.scalars(select(ServiceMesh).order_by(ServiceMesh.name)).all()
        if manage
        else [],
        bastion_candidates=service.bastion_candidates(cluster) if manage else [],
        progress=service.progress(cluster, nodes),
        spread_choices=ANTI_AFFINITY_CHOICES,
        kubeconfig=kubeconfigs.may_download(cluster, current_user)
        and kubeconfigs.exists(cluster.id),
        utilisation=page_panel("cluster", cluster),
    )


@bp.route("/<int:cluster_id>/kubeconfig")
@requires("clusters")
def kubeconfig(cluster_id: int):
    """Download the cluster's kubeconfig: operators and the tenant's admins; audited."""
    cluster = _cluster(cluster_id)
    if not kubeconfigs.may_download(cluster, current_user):
        abort(403)
    try:
        text = kubeconfigs.download(cluster, current_user._get_current_object())
    except kubeconfigs.KubeconfigError as error:  # the key changed: say so where it is asked
        flash(str(error), "error")
        return redirect(url_for("clusters.detail", cluster_id=cluster.id))
    if text is None:
        abort(404)
    return kubeconfigs.attachment(cluster, text)


ACTIONS = {
    "add_plugin": lambda c, f, u: service.add_plugin(c, f.get("name", ""), f.get("version", ""), u),
    "plugin_version": lambda c, f, u: service.update_plugin(
        c, int_or_none(f.get("plugin_id")), u, version=f.get("version", "")
    ),
    "plugin_status": lambda c, f, u: service.update_plugin(
        c, int_or_none(f.get("plugin_id")), u, status=f.get("status", "")
    ),
    "remove_plugin": lambda c, f, u: service.remove_plugin(c, int_or_none(f.get("plugin_id")), u),
    "bind_mesh": lambda c, f, u: service.bind_mesh(
        c, int_or_none(f.get("mesh_id")), f.get("role", ""), u
    ),
    "mesh_role": lambda c, f, u: service.change_mesh_role(
        c, int_or_none(f.get("link_id")), f.get("role", ""), u
    ),
    "unbind_mesh": lambda c, f, u: service.unbind_mesh(c, int_or_none(f.get("link_id")), u),
    "add_bastion": lambda c, f, u: service.add_bastion(c, int_or_none(f.get("vm_id")), u),
    "remove_bastion": lambda c, f, u: service.remove_bastion(c, int_or_none(f.get("link_id")), u),
    "scale": lambda c, f, u: service.scale_workers(
        # A remove value that is no id becomes 0, which names no worker: the service refuses.
        c, int_or_none(f.get("workers"), minimum=0), u,
        [int_or_none(i) or 0 for i in f.getlist("remove")],
        f.get("anti_affinity") or "soft",
    ),
    "retry": lambda c, f, u: service.retry_failed_nodes(c, u),
}
DONE = {
    "add_plugin": _l("Plugin added."),
    "plugin_version": _l("Plugin version changed."),
    "plugin_status": _l("Plugin status changed."),
    "remove_plugin": _l("Plugin removed."),
    "bind_mesh": _l("Service mesh bound."),
    "mesh_role": _l("Mesh role changed."),
    "unbind_mesh": _l("Service mesh unbound."),
    "add_bastion": _l("Bastion associated."),
    "remove_bastion": _l("Bastion dissociated."),
    "scale": _l("Scaling: workers are on their way."),
    "retry": _l("Retrying the failed nodes."),
}


@bp.route("/<int:cluster_id>/actions", methods=["POST"])
@requires("clusters", "create")
def act(cluster_id: int):
    """Plugins, meshes, bastions, scaling and retries: for operators and the tenant's admins."""
    cluster = _cluster(cluster_id)
    op = request.form.get("op", "")
    if not _may_manage(cluster):
        abort(404)
    if op not in ACTIONS:
        abort(400, description=_("Unknown cluster action %(op)s.", op=repr(op)))
    if op == "scale" and request.form.get("confirmed") != "yes":
        # A scale-down names the workers that go before any is deleted.
        try:
            going = service.workers_going(
                cluster, int_or_none(request.form.get("workers"), minimum=0),
                [int_or_none(i) or 0 for i in request.form.getlist("remove")],
            )
        except service.ClusterError as error:
            flash(str(error), "error")
            return redirect(url_for("clusters.detail", cluster_id=cluster_id))
        if going:
            return render_template(
                "clusters/confirm_scale.html", cluster=cluster, going=going,
                form=request.form,
            )
    try:
        ACTIONS[op](cluster, request.form, current_user)
    except (service.ClusterError, JobError) as error:
        db.session.rollback()
        flash(str(error), "error")
    except PlacementRefused as refused:
        flash(refusal_message(refused.refusal), "error")
    else:
        flash(str(DONE[op]), "success")
    return redirect(url_for("clusters.detail", cluster_id=cluster_id))


@bp.route("/<int:cluster_id>/status", methods=["POST"])
@requires("clusters", "status")
def set_status(cluster_id: int):
    """Maintenance / offline / active: operators and the cluster's maintainers."""
    cluster = _cluster(cluster_id)
    if not service.may_set_status(cluster, current_user):
        abort(403, description=_("Only operators and the cluster's maintainers set its status."))
    try:
        service.set_status(cluster, request.form.get("status", ""), current_user)
    except service.ClusterError as error:
        flash(str(error), "error")
    else:
        flash(_("Cluster %(cluster)s is now %(status)s.", cluster=cluster.name,
                status=enum_label("status", cluster.status)), "success")
    return redirect(url_for("clusters.detail", cluster_id=cluster_id))


@bp.route("/<int:cluster_id>/delete", methods=["GET", "POST"])
@requires("clusters", "delete")
def delete(cluster_id: int):
    cluster = _cluster(cluster_id)
    if not _may_manage(cluster):
        abort(404)
    if request.method == "GET":
        return render_template(
            "clusters/confirm_delete.html", cluster=cluster, nodes=service.live_nodes(cluster),
            bastions=service.bastion_offers(cluster),
        )
    try:
        # The page's checkbox is checked by default; unchecked, the browser sends nothing.
        service.delete_cluster(
            cluster, current_user, delete_bastion=request.form.get("delete_bastion") == "yes"
        )
    except (service.ClusterError, JobError) as error:
        db.session.rollback()
        flash(str(error), "error")
    else:
        flash(_("Cluster %(cluster)s is being deleted: every node goes through the agent.",
                cluster=cluster.name), "success")
    return redirect(url_for("clusters.detail", cluster_id=cluster_id))
