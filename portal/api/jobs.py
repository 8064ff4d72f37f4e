"""Provisioning jobs: what remote Provision Agents call (claim, complete), and the queue
for operators to read. Agents run with an operator's (service account's) token."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from sqlalchemy import select

from portal.api import api, listing, waiting
from portal.api.core import OPERATORS_ONLY
from portal.api.problems import not_found
from portal.api.schemas import INT32, Input, Output, Paging, Stamped, UtcDatetime, page_of
from portal.clusters import kubeconfig as kubeconfigs
from portal.extensions import db
from portal.i18n import _
from portal.models import JOB_ACTIONS, JOB_STATUSES, ProvisionJob
from portal.provisioning import jobs

TAGS = ("provision-jobs",)
MAX_CLAIM = 50
MAX_LEASE = 24 * 3600


class Job(Stamped):
    vm_id: int
    action: Literal[JOB_ACTIONS]  # type: ignore[valid-type]
    target_baremetal_id: int | None
    status: Literal[JOB_STATUSES]  # type: ignore[valid-type]
    attempts: int
    claimed_by: str | None
    lease_expires_at: UtcDatetime | None
    result_message: str


class JobDetail(Job):
    output: str = Field(description=(
        "What the agent's driver printed (an exec command's output, the libvirt driver's "
        f"steps), at most {jobs.OUTPUT_LIMIT:,} characters: its start and its end."))


class ClusterNode(Output):
    vm_id: int
    name: str
    role: str
    status: str
    baremetal_name: str | None


class ClaimedJob(Output):
    """What an agent needs to act on: the action, the VM (with its tenant), its flavor,
    its server and that server's hypervisor URI (for a migrate, the target's too), its
    cluster with the cluster's nodes, and its role."""

    id: int
    action: Literal[JOB_ACTIONS]  # type: ignore[valid-type]
    vm_id: int
    vm_name: str
    tenant_id: int
    baremetal_id: int | None
    cpu: int
    memory: int
    storage: int
    attempts: int
    lease_expires_at: UtcDatetime | None
    target_baremetal_id: int | None = Field(description="Where a migrate job moves the VM.")
    role: str
    k8s_cluster_id: int | None
    tenant_name: str
    spec_id: int | None
    spec_name: str = Field(description="The flavor's name.")
    baremetal_name: str | None
    hypervisor_uri: str | None = Field(description="The server's libvirt URI, if it has one.")
    target_baremetal_name: str | None
    target_hypervisor_uri: str | None
    k8s_cluster_name: str | None
    k8s_version: str | None
    cluster_nodes: list[ClusterNode] = Field(description=(
        "The cluster's live nodes when the job was claimed (empty for a standalone VM), so "
        "that control planes can be bootstrapped before workers."))


JobPage, ClaimedPage = page_of(Job), page_of(ClaimedJob)
ScopeNames = list[Annotated[str, Field(min_length=1, max_length=64)]]


class ClaimIn(Input):
    agent: str = Field(min_length=1, max_length=128, description="The agent's unique name.")
    limit: int = Field(1, ge=1, le=MAX_CLAIM, description="Jobs to claim at most.")
    lease_seconds: int = Field(jobs.DEFAULT_LEASE_SECONDS, ge=1, le=MAX_LEASE, description=(
        "How long the jobs stay this agent's; after that others may claim them."))
    regions: ScopeNames = Field([], max_length=50, description=(
        "Only jobs for VMs on servers in these regions (empty: any)."))
    dcs: ScopeNames = Field([], max_length=50, description=(
        "Only jobs for VMs on servers in these DCs (empty: any)."))
    groups: ScopeNames = Field([], max_length=50, description=(
        "Only jobs for VMs on servers of these groups, by name (empty: any)."))


class CompleteIn(Input):
    agent: str = Field(min_length=1, max_length=128, description="The agent that claimed it.")
    succeeded: bool
    message: str = Field("", max_length=2000)
    output: str = Field("", max_length=jobs.OUTPUT_LIMIT, description=(
        "What the driver printed; kept with the job. Send its start and end "
        f"when it is longer than {jobs.OUTPUT_LIMIT:,} characters."))
    kubeconfig: str | None = Field(
        None, max_length=kubeconfigs.MAX_BYTES,
        description="A successful create of a control-plane node: the cluster's kubeconfig "
        "(YAML), kept encrypted for the tenant's admins to download.")


class HeartbeatIn(Input):
    agent: str = Field(min_length=1, max_length=128, description="The agent that claimed it.")
    lease_seconds: int = Field(jobs.DEFAULT_LEASE_SECONDS, ge=1, le=MAX_LEASE, description=(
        "The lease runs this long from now."))
    message: str | None = Field(None, max_length=2000, description=(
        "What the agent is doing now (e.g. what a deferred job waits for), shown with "
        "the job."))


class JobQuery(Paging):
    status: Literal[JOB_STATUSES] | None = None  # type: ignore[valid-type]
    action: Literal[JOB_ACTIONS] | None = None  # type: ignore[valid-type]
    vm_id: int | None = Field(None, ge=1, le=INT32)


@api.operation("GET", "/provision-jobs", summary="List provisioning jobs", tags=TAGS,
               access=OPERATORS_ONLY, query=JobQuery, response=JobPage)
def list_jobs(query: JobQuery):
    """The queue, newest first."""
    stmt = select(ProvisionJob)
    for name in ("status", "action", "vm_id"):
        value = getattr(query, name)
        if value is not None:
            stmt = stmt.where(getattr(ProvisionJob, name) == value)
    total = listing.total(stmt)
    rows = db.session.scalars(
        stmt.order_by(ProvisionJob.id.desc()).limit(query.limit).offset(query.offset)
    ).all()
    return {"items": rows, "total": total}


JobWait = waiting.wait_query("JobWait", JOB_STATUSES)
JOB_FINAL = ("succeeded", "failed", "cancelled")


@api.operation("GET", "/provision-jobs/{job_id}", summary="Get a provisioning job", tags=TAGS,
               access=OPERATORS_ONLY, query=JobWait, response=JobDetail,
               headers=waiting.HEADERS)
def get_job(job_id: int, query):
    """With ``wait_for``, answers once the job has that status; ``succeeded``, ``failed``
    and ``cancelled`` are final (Wait-Result ``final``)."""
    job = db.session.get(ProvisionJob, job_id)
    if job is None:
        raise not_found()
    return waiting.read(ProvisionJob, job, query, JOB_FINAL)


@api.operation("POST", "/provision-jobs/claim", summary="Claim jobs (agents)", tags=TAGS,
               access=OPERATORS_ONLY, body=ClaimIn, response=ClaimedPage,
               idempotent=False)
def claim_jobs(body: ClaimIn):
    """Queued jobs, and claimed ones whose lease expired, become this agent's for
    ``lease_seconds`` (``FOR UPDATE SKIP LOCKED``: two agents never get the same job).
    An empty list when there is nothing to do."""
    scope = jobs.ClaimScope(tuple(body.regions), tuple(body.dcs), tuple(body.groups))
    claimed = jobs.claim(body.agent, body.limit, body.lease_seconds, scope)
    return {"items": claimed, "total": len(claimed)}


@api.operation("POST", "/provision-jobs/{job_id}/complete", summary="Report a job's outcome",
               tags=TAGS, access=OPERATORS_ONLY, body=CompleteIn, response=JobDetail,
               errors=(409,),
               idempotent=False)
def complete_job(job_id: int, body: CompleteIn):
    """Success: a created VM becomes ``active``, a deleted one ``deleted`` (resources
    released). Failure: a create leaves the VM ``error`` with the message, its resources
    released; a failed delete keeps it ``deleting``. 409 when the job is not claimed by
    this agent (its lease expired and another agent took it)."""
    if db.session.get(ProvisionJob, job_id) is None:
        raise not_found(_("No provisioning job %(id)s.", id=job_id))
    db.session.rollback()
    return jobs.complete(job_id, body.agent, body.succeeded, body.message, body.kubeconfig,
                         body.output)


@api.operation("POST", "/provision-jobs/{job_id}/heartbeat", summary="Renew a job's lease",
               tags=TAGS, access=OPERATORS_ONLY, body=HeartbeatIn, response=Job, errors=(409,),
               idempotent=False)
def heartbeat_job(job_id: int, body: HeartbeatIn):
    """An agent whose driver is still working renews its lease (every third of it), so that
    no other agent takes the job meanwhile. 409 when the job is no longer this agent's
    (answered, cancelled, or taken by another agent after the lease expired): stop
    working on it, its answer will be refused."""
    if db.session.get(ProvisionJob, job_id) is None:
        raise not_found(_("No provisioning job %(id)s.", id=job_id))
    db.session.rollback()
    jobs.heartbeat(job_id, body.agent, body.lease_seconds, body.message)
    return db.session.get(ProvisionJob, job_id)
