"""Placement preview: the wizards' live preview, as data — the same decision as creating,
without reserving anything."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from portal.api import api
from portal.api.clusters import ClusterCreate
from portal.api.core import Access
from portal.api.schemas import Output
from portal.api.vms import VmCreate
from portal.clusters import service as clusters
from portal.scheduler import Plan
from portal.scheduler.messages import explanation_text, refusal_message, spread_text
from portal.scheduler.reservation import Preview
from portal.vms import service as vms

TAGS = ("placements",)


class VmPreviewIn(VmCreate):
    kind: Literal["vm"]


class ClusterPreviewIn(ClusterCreate):
    kind: Literal["cluster"]


PreviewIn = Annotated[VmPreviewIn | ClusterPreviewIn, Field(discriminator="kind")]


class PlacedNode(Output):
    name: str
    role: str
    baremetal_id: int
    baremetal_name: str
    rack: str | None
    explanation: str = Field(description="Why this server was chosen.")


class QuotaLineOut(Output):
    dimension: Literal["cpu", "memory", "storage"]
    used: int
    request: int
    limit: int | None = Field(description="None: no limit in this dimension.")
    fits: bool


class RefusalOut(Output):
    code: str = Field(description="no_quota, quota_exceeded or insufficient_capacity")
    message: str
    details: dict[str, Any] = Field(description=(
        "The numbers: quota dimension, limit, used and requested; for capacity, "
        "``reasons`` counts the group's servers per reason they cannot take the request."))


class PreviewOut(Output):
    ok: bool = Field(description="True when the request would be placed now.")
    strategy: str
    anti_affinity: str = Field(description="soft, hard or none, as requested.")
    spread: str = Field(description=(
        "How far each role is spread: \"3 control planes on 3 racks; 12 workers on 12 "
        "servers\"; empty for a single VM."))
    nodes: list[PlacedNode] = Field(description="Where each node would go (when ok).")
    quota: list[QuotaLineOut] = Field(description="The tenant's quota in the group, as the "
                                                  "request would change it.")
    refusal: RefusalOut | None
    suggestions: list[str] = Field(description="What would work instead (when refused).")


def preview_out(preview: Preview, strategy: str, anti_affinity: str) -> PreviewOut:
    result = preview.result
    nodes: list[PlacedNode] = []
    if isinstance(result, Plan):
        nodes = [
            PlacedNode(name=node.name, role=node.role, baremetal_id=host.id,
                       baremetal_name=host.name, rack=host.rack,
                       explanation=explanation_text(result, i, host.name))
            for i, (node, host) in enumerate(preview.chosen())
        ]
    refusal = None if preview.ok else RefusalOut(
        code=result.code, message=refusal_message(result), details=result.details)
    quota = [] if preview.placement.quota is None else [
        QuotaLineOut(dimension=line.dimension, used=line.used, request=line.request,
                     limit=line.limit, fits=line.fits)
        for line in preview.quota_lines
    ]
    return PreviewOut(
        ok=preview.ok, strategy=getattr(result, "strategy", "") or strategy,
        anti_affinity=anti_affinity,
        spread=spread_text(result) if isinstance(result, Plan) else "", nodes=nodes,
        quota=quota,
        refusal=refusal, suggestions=preview.suggestions,
    )


@api.operation("POST", "/placements/preview", summary="Preview a placement",
               tags=TAGS, access=Access("vms", "create"), body=PreviewIn, response=PreviewOut)
def preview_placement(body: VmPreviewIn | ClusterPreviewIn):
    """The decision creating would make now, without reserving: where each node goes and
    why, the quota before and after — or the refusal with its numbers and per-reason
    counts, and suggestions. Send a VM request (``kind: vm``, the body of POST /vms) or a
    cluster request (``kind: cluster``, the body of POST /clusters). Names are not checked
    for clashes here."""
    if isinstance(body, VmPreviewIn):
        request = body.build(check_names=False)
        return preview_out(vms.preview_vms(request), request.strategy, request.anti_affinity)
    request = body.build(check_names=False)
    return preview_out(
        clusters.preview_cluster(request), request.strategy, request.anti_affinity
    )
