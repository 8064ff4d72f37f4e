"""Operations on servers. Placement in a rack is checked here so forms, imports and the API
get the same clear message; the database refuses the same mistakes as a last line."""

from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.models import Baremetal, Rack


def rack_position_problem(
    rack: Rack, unit: int | None, size_u: int, ignore_id: int | None = None
) -> str | None:
    """Why a server of size_u units cannot sit at `unit` of `rack`, or None when it can."""
    if unit is None:
        return f"Choose the unit of rack {rack.name} the server sits in (1–{rack.height_u})."
    if size_u < 1:
        return "A server is at least 1 U high."
    top = unit + size_u - 1
    if unit < 1 or top > rack.height_u:
        return (
            f"Units {unit}–{top} do not fit in rack {rack.name}, which has units 1–{rack.height_u}."
        )
    clash = db.session.scalars(
        select(Baremetal)
        .where(
            Baremetal.rack_id == rack.id,
            Baremetal.rack_unit <= top,
            Baremetal.rack_unit + Baremetal.size_u - 1 >= unit,
            Baremetal.id != (ignore_id or 0),
        )
        .order_by(Baremetal.rack_unit)
    ).all()
    if clash:
        taken = ", ".join(f"{s.name} (U{s.rack_unit}–U{s.top_unit})" for s in clash)
        return f"Units {unit}–{top} of rack {rack.name} are taken by {taken}."
    return None
