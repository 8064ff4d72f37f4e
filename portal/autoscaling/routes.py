"""Scaling policy pages: list, create, edit, delete, and the policy page with its decisions
as a timeline (newest first, paged, each with its inputs and explanation)."""

from __future__ import annotations

import math

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from portal.audit.service import history
from portal.auth.access import administered_tenant_ids, requires
from portal.autoscaling import service
from portal.autoscaling.forms import PolicyForm
from portal.autoscaling.lists import policies
from portal.extensions import db
from portal.i18n import _
from portal.metrics.panels import page_panel
from portal.models import K8sCluster, ScalingPolicy, VirtualMachine, VmGroup, utcnow
from portal.web import list_page, render
from portal.web.forms import int_or_none, options, show_errors

bp = Blueprint("autoscaling", __name__, url_prefix="/autoscaling")
TIMELINE_ROWS = 20
# The service's field names -> the form's.
FORM_FIELDS = {"target_type": "target_ref", "target_id": "target_ref"}


def _policy_or_404(policy_id: int) -> ScalingPolicy:
    policy = service.visible_policy(policy_id)
    if policy is None:
        abort(404)
    return policy


@bp.route("/")
@requires("autoscaling")
def list():  # noqa: A001
    return list_page(policies, "autoscaling/list.html")


def _targets() -> list[tuple[str, str]]:
    """VM groups and clusters the user may give a policy, that have none yet."""
    allowed = administered_tenant_ids(current_user)
    # Ids and names only: a select of 2,000 clusters need not load 2,000 objects.
    groups = select(VmGroup.id, VmGroup.name).where(
        VmGroup.status == "active",
        ~select(ScalingPolicy.id).where(ScalingPolicy.vm_group_id == VmGroup.id).exists(),
    ).order_by(VmGroup.name)
    clusters = select(K8sCluster.id, K8sCluster.name).where(
        K8sCluster.status.not_in(("deleting", "deleted")), ~select(ScalingPolicy.id).where(
            ScalingPolicy.k8s_cluster_id == K8sCluster.id).exists()).order_by(K8sCluster.name)
    if allowed is not None:
        groups = groups.where(VmGroup.tenant_id.in_(allowed))
        clusters = clusters.where(K8sCluster.tenant_id.in_(allowed))
    # Each sentence translated once, not once an option.
    group_label, cluster_label = _("VM group %(name)s"), _("Cluster %(name)s (worker pool)")
    return ([(f"vm_group:{g.id}", group_label % {"name": g.name})
             for g in db.session.execute(groups)]
            + [(f"cluster:{c.id}", cluster_label % {"name": c.name})
               for c in db.session.execute(clusters)])


def _fields(form: PolicyForm, new: bool) -> service.PolicyFields:
    fields = service.PolicyFields(
        min=form.min.data, max=form.max.data, metric=form.metric.data or None,
        target=form.target.data, tolerance=form.tolerance.data,
        scale_down_stabilization_seconds=form.scale_down_stabilization_seconds.data,
        warmup_seconds=form.warmup_seconds.data, mode=form.mode.data or None)
    if new:
        kind, _sep, ident = (form.target_ref.data or "").partition(":")
        fields.target_type, fields.target_id = kind or None, int_or_none(ident)
    return fields


def _save(form: PolicyForm, policy: ScalingPolicy | None):
    """The created or changed policy, or None with the errors on the form."""
    if not form.validate():
        return None
    try:
        if policy is None:
            return service.create_policy(current_user, _fields(form, True))
        service.update_policy(policy, current_user, _fields(form, False))
        return policy
    except service.PolicyInvalid as invalid:
        db.session.rollback()
        show_errors(form, {FORM_FIELDS.get(k, k): v for k, v in invalid.errors.items()})
        return None


@bp.route("/new", methods=["GET", "POST"])
@requires("autoscaling", "write")
def new():
    form = PolicyForm(request.form if request.method == "POST" else None)
    form.target_ref.choices = options(_targets())
    if request.method == "GET":
        form.target_ref.data = request.args.get("target", "")
        if form.target_ref.data.startswith("cluster:"):
            form.metric.data = "pods_pending"
    if request.method == "POST":
        policy = _save(form, None)
        if policy is not None:
            flash(_("Scaling policy for %(name)s created in %(mode)s mode.",
                    name=policy.target_name, mode=policy.mode), "success")
            return redirect(url_for("autoscaling.detail", policy_id=policy.id))
        return render_template("autoscaling/form.html", form=form, policy=None), 422
    return render_template("autoscaling/form.html", form=form, policy=None)


@bp.route("/<int:policy_id>/edit", methods=["GET", "POST"])
@requires("autoscaling", "write")
def edit(policy_id: int):
    policy = _policy_or_404(policy_id)
    if not service.may_change(policy):
        abort(404)
    form = PolicyForm(request.form if request.method == "POST" else None, data=None if
                      request.method == "POST" else {
                          "min": policy.min_size, "max": policy.max_size,
                          "metric": policy.metric, "target": policy.target,
                          "tolerance": policy.tolerance, "mode": policy.mode,
                          "scale_down_stabilization_seconds":
                              policy.scale_down_stabilization_seconds,
                          "warmup_seconds": policy.warmup_seconds})
    del form.target_ref
    if request.method == "POST":
        if _save(form, policy) is not None:
            flash(_("Scaling policy saved."), "success")
            return redirect(url_for("autoscaling.detail", policy_id=policy.id))
        return render_template("autoscaling/form.html", form=form, policy=policy), 422
    return render_template("autoscaling/form.html", form=form, policy=policy)


@bp.route("/<int:policy_id>")
@requires("autoscaling")
def detail(policy_id: int):
    policy = _policy_or_404(policy_id)
    stmt = service.decisions_query(policy)
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    pages = max(1, math.ceil(total / TIMELINE_ROWS))
    page = min(max(1, int_or_none(request.args.get("page")) or 1), pages)
    decisions = db.session.scalars(
        stmt.limit(TIMELINE_ROWS).offset((page - 1) * TIMELINE_ROWS)).all()
    member_ids = {m["id"] for d in decisions for m in (d.inputs or {}).get("members", [])}
    vm_names = dict(db.session.execute(
        select(VirtualMachine.id, VirtualMachine.name)
        .where(VirtualMachine.id.in_(member_ids))).all()) if member_ids else {}
    return render("autoscaling/detail.html", "timeline", policy=policy, decisions=decisions,
                  vm_names=vm_names,
                  page=page, pages=pages, total=total, editable=service.may_change(policy),
                  backing_off=service.backing_off(policy, utcnow()),
                  events=history("scaling_policy", policy.id),
                  utilisation=page_panel("policy", policy))


@bp.route("/<int:policy_id>/delete", methods=["GET", "POST"])
@requires("autoscaling", "write")
def delete(policy_id: int):
    policy = _policy_or_404(policy_id)
    if not service.may_change(policy):
        abort(404)
    if request.method == "GET":
        return render_template("autoscaling/confirm_delete.html", policy=policy)
    name = policy.target_name
    service.delete_policy(policy, current_user)
    flash(_("Scaling policy for %(name)s deleted; its size stays as it is.", name=name),
          "success")
    return redirect(url_for("autoscaling.list"))
