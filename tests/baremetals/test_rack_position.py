import pytest

from portal.baremetals.service import rack_position_problem
from portal.extensions import db
from tests import factories as f


@pytest.fixture
def rack(any_app):
    rack = f.rack(name="tpe1-r01", height_u=42)
    f.server(rack=rack, rack_unit=10, size_u=2, name="db-01")  # U10–U11
    db.session.commit()
    return rack


@pytest.mark.parametrize(
    "unit, size, expected",
    [
        (12, 1, None),
        (8, 2, None),
        (11, 1, "taken by db-01 (U10–U11)"),
        (9, 2, "taken by db-01 (U10–U11)"),
        (9, 4, "taken by db-01 (U10–U11)"),
        (42, 1, None),
        (42, 2, "Units 42–43 do not fit in rack tpe1-r01, which has units 1–42."),
        (0, 1, "do not fit"),
        (None, 1, "Choose the unit"),
    ],
)
def test_overlap_and_height_are_explained(rack, unit, size, expected):
    problem = rack_position_problem(rack, unit, size)
    if expected is None:
        assert problem is None
    else:
        assert expected in problem


def test_a_server_does_not_clash_with_itself(rack):
    server = rack.baremetals[0]
    assert rack_position_problem(rack, 9, 2, ignore_id=server.id) is None
