"""Provisioning jobs: what remote Provision Agents call (claim, complete), and the queue
for operators to read. Agents run with an operator's (service account's) token."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sqlalchemy import select

from portal.api import api, listing, waiting
from portal.api.core import OPERATORS_ONLY
from portal.api.problems import not_found
from portal.api.schemas import INT32, Input, Output, Paging, Stamped, UtcDatetime, page_of
from portal.clusters import kubeconfig as kubeconfigs
from portal.extensions import db
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


class ClaimedJob(Output):
    """What an agent needs to act on."""

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


JobPage, ClaimedPage = page_of(Job), page_of(ClaimedJob)


class ClaimIn(Input):
    agent: str = Field(min_length=1, max_length=128, description="The agent's unique name.")
    limit: int = Field(1, ge=1, le=MAX_CLAIM, description="Jobs to claim at most.")
    lease_seconds: int = Field(jobs.DEFAULT_LEASE_SECONDS, ge=1, le=MAX_LEASE, description=(
        "How long the jobs stay this agent's; after that others may claim them."))


class CompleteIn(Input):
    agent: str = Field(min_length=1, max_length=128, description="The agent that claimed it.")
    succeeded: bool
    message: str = Field("", max_length=2000)
    kubeconfig: str | None = Field(
        None, max_length=kubeconfigs.MAX_BYTES,
        description="A successful create of a control-plane node: the cluster's kubeconfig "
        "(YAML), kept encrypted for the tenant's admins to download.")


class HeartbeatIn(Input):
    agent: str = Field(min_length=1, max_length=128, description="The agent that claimed it.")
    lease_seconds: int = Field(jobs.DEFAULT_LEASE_SECONDS, ge=1, le=MAX_LEASE, description=(
        "The lease runs this long from now."))


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
               access=OPERATORS_ONLY, query=JobWait, response=Job, headers=waiting.HEADERS)
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
    claimed = jobs.claim(body.agent, body.limit, body.lease_seconds)
    return {"items": claimed, "total": len(claimed)}


@api.operation("POST", "/provision-jobs/{job_id}/complete", summary="Report a job's outcome",
               tags=TAGS, access=OPERATORS_ONLY, body=CompleteIn, response=Job, errors=(409,),
               idempotent=False)
def complete_job(job_id: int, body: CompleteIn):
    """Success: a created VM becomes ``active``, a deleted one ``deleted`` (resources
    released). Failure: a create leaves the VM ``error`` with the message, its resources
    released; a failed delete keeps it ``deleting``. 409 when the job is not claimed by
    this agent (its lease expired and another agent took it)."""
    if db.session.get(ProvisionJob, job_id) is None:
        raise not_found(f"No provisioning job {job_id}.")
    db.session.rollback()
    return jobs.complete(job_id, body.agent, body.succeeded, body.message, body.kubeconfig)


@api.operation("POST", "/provision-jobs/{job_id}/heartbeat", summary="Renew a job's lease",
               tags=TAGS, access=OPERATORS_ONLY, body=HeartbeatIn, response=Job, errors=(409,),
               idempotent=False)
def heartbeat_job(job_id: int, body: HeartbeatIn):
    """An agent whose driver is still working renews its lease (every third of it), so that
    no other agent takes the job meanwhile. 409 when the job is no longer this agent's
    (answered, cancelled, or taken by another agent after the lease expired): stop
    working on it, its answer will be refused."""
    if db.session.get(ProvisionJob, job_id) is None:
        raise not_found(f"No provisioning job {job_id}.")
    db.session.rollback()
    jobs.heartbeat(job_id, body.agent, body.lease_seconds)
    return db.session.get(ProvisionJob, job_id)
