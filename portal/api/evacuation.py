"""Draining servers and racks (SPEC 8.2): the dry run, the execution, and the return to
service — over portal.baremetals.evacuation, like the pages."""

from __future__ import annotations

from flask_login import current_user
from pydantic import BaseModel, Field

from portal.api import api
from portal.api.core import Access
from portal.api.problems import CONFLICT, ApiError
from portal.api.schemas import Input
from portal.auth.access import get_or_404
from portal.baremetals import evacuation
from portal.models import Baremetal, Rack

TAGS = ("evacuation",)
OPERATORS = Access("baremetals", "write")


class EvacuationIn(Input):
    dry_run: bool = Field(description="true: only say what would move; false: drain now.")


class MoveOut(BaseModel):
    vm_id: int
    from_baremetal_id: int
    to_baremetal_id: int


class StuckOut(BaseModel):
    vm_id: int
    reason: str


class EvacuationOut(BaseModel):
    moves: list[MoveOut]
    stuck: list[StuckOut]


class ReturnedOut(BaseModel):
    baremetal_ids: list[int] = Field(description="The servers now back in service.")


def _run(servers, body: EvacuationIn, label) -> dict:
    try:
        if body.dry_run:
            return evacuation.preview(servers).as_dict()
        return evacuation.evacuate(servers, current_user._get_current_object(),
                                   label=label).as_dict()
    except evacuation.EvacuationRefused as error:
        raise ApiError(CONFLICT, str(error)) from None


def _returned(servers) -> dict:
    try:
        done = evacuation.return_to_service(servers, current_user._get_current_object())
    except evacuation.EvacuationRefused as error:
        raise ApiError(CONFLICT, str(error)) from None
    return {"baremetal_ids": [s.id for s in done]}


@api.operation("POST", "/baremetals/{baremetal_id}/evacuation", summary="Drain a server",
               tags=TAGS, access=OPERATORS, body=EvacuationIn, response=EvacuationOut,
               errors=(409,))
def evacuate_baremetal(baremetal_id: int, body: EvacuationIn):
    """Move every VM off the server: destinations in the same group (anti-affinity of
    clusters kept), the server to ``maintenance``, a ``migrate`` job per VM. VMs that
    cannot move now are listed in ``stuck`` with the reason. ``dry_run`` changes nothing."""
    server = get_or_404(Baremetal, baremetal_id)
    return _run([server], body, ("baremetal", server.id, server.name))


@api.operation("POST", "/racks/{rack_id}/evacuation", summary="Drain every server of a rack",
               tags=TAGS, access=OPERATORS, body=EvacuationIn, response=EvacuationOut,
               errors=(409,))
def evacuate_rack(rack_id: int, body: EvacuationIn):
    """The same as a server's drain, for all of the rack's active servers and servers in
    maintenance at once (all or nothing); destinations are outside the rack."""
    rack = get_or_404(Rack, rack_id)
    return _run(evacuation.servers_of_rack(rack), body, ("rack", rack.id, rack.name))


@api.operation("POST", "/baremetals/{baremetal_id}/return-to-service",
               summary="Return a drained server to service", tags=TAGS, access=OPERATORS,
               response=ReturnedOut, errors=(409,))
def return_baremetal(baremetal_id: int):
    """From ``maintenance`` back to ``active``: placements may use it again. Refused (409)
    while VMs are still migrating off it, or when it is not in maintenance."""
    return _returned([get_or_404(Baremetal, baremetal_id)])


@api.operation("POST", "/racks/{rack_id}/return-to-service",
               summary="Return a drained rack to service", tags=TAGS, access=OPERATORS,
               response=ReturnedOut, errors=(409,))
def return_rack(rack_id: int):
    """Every server of the rack in ``maintenance`` back to ``active``; refused (409) while
    VMs are still migrating off any of them."""
    return _returned(evacuation.servers_of_rack(get_or_404(Rack, rack_id)))
