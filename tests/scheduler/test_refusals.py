"""Refusals say which check failed, with numbers a user can act on (SPEC 3.1, 3.6)."""

from __future__ import annotations

from portal.scheduler import (
    Constraints,
    Host,
    NodeDemand,
    PlacementRequest,
    Plan,
    Refusal,
    Resources,
    plan,
)

VM = NodeDemand("standalone", Resources(8, 32, 100))


def server(host_id: int, free: Resources, rack: str = "r1") -> Host:
    return Host(host_id, f"bm-{host_id:02d}", "north", "dc1", rack, Resources(32, 128, 1000), free)


GROUP = [server(i, Resources(16, 16, 500)) for i in range(1, 15)] + [
    server(15, Resources(3, 64, 500)),
    server(16, Resources(2, 64, 500)),
    server(17, Resources(32, 128, 1000), rack="r9"),
    server(18, Resources(32, 128, 1000), rack="r9"),
]


def test_no_room_counts_every_host_under_its_first_failing_check():
    result = plan(
        PlacementRequest((VM,), constraints=Constraints(exclude_racks=("r9",))),
        GROUP,
        inactive={"maintenance": 3},
    )
    assert isinstance(result, Refusal) and result.code == "insufficient_capacity"
    assert result.details["reasons"] == {
        "not enough memory": 14,
        "maintenance": 3,
        "not enough cpu": 2,
        "excluded by rack constraint": 2,
    }
    assert result.details["hosts_considered"] == 21
    assert result.message == (
        "No server in this group has room for cpu 8 / memory 32 GiB / storage 100 GiB. "
        "Hosts in this group — 14 hosts: not enough memory; 3 hosts: maintenance; "
        "2 hosts: excluded by rack constraint; 2 hosts: not enough cpu. "
        "The most free cpu on an allowed server is 16 cores (needed 8 cores); "
        "the most free memory on an allowed server is 64 GiB (needed 32 GiB)."
    )


def test_no_room_offers_the_largest_fit_among_allowed_servers():
    result = plan(PlacementRequest((VM,), constraints=Constraints(exclude_racks=("r9",))), GROUP)
    # bm-01 could hold half of the demanded shape, more than any other allowed server.
    assert result.details["largest_fit"] == {"cpu": 16, "memory": 16, "storage": 500}
    assert Resources(4, 16, 100).fits_in(Resources(**result.details["largest_fit"]))


def test_without_an_allowed_server_there_is_no_largest_fit():
    result = plan(PlacementRequest((VM,), constraints=Constraints(regions=("south",))), GROUP)
    assert result.details["reasons"] == {"excluded by region constraint": 18}
    assert result.details["largest_fit"] is None


def test_quota_refusal_names_the_dimension_the_headroom_and_the_request():
    result = plan(PlacementRequest((VM, VM)), GROUP, headroom=Resources(100, 40, 10_000))
    assert result.code == "quota_exceeded"
    assert result.message == (
        "Quota exceeded in this group — memory: this request needs 64 GiB, 40 GiB of quota left."
    )
    assert result.details["dimension"] == "memory"
    assert result.details["requested"] == 64
    assert result.details["headroom"] == 40


def test_quota_lowered_below_usage_says_so():
    result = plan(PlacementRequest((VM,)), GROUP, headroom=Resources(-2, 100, 10_000))
    assert result.details == {
        "dimension": "cpu",
        "requested": 8,
        "headroom": -2,
        "all": {
            "cpu": {"requested": 8, "headroom": -2},
            "memory": {"requested": 32, "headroom": 100},
            "storage": {"requested": 100, "headroom": 10_000},
        },
    }
    assert "usage is already 2 cores over the limit" in result.message


def test_a_request_exactly_at_the_quota_is_placed():
    result = plan(PlacementRequest((VM,)), GROUP, headroom=Resources(8, 32, 100))
    assert isinstance(result, Plan)


def test_invalid_requests_are_refused_as_validation_errors():
    cases = {
        "empty": PlacementRequest(()),
        "negative": PlacementRequest((NodeDemand("worker", Resources(1, -2, 0)),)),
        "role": PlacementRequest((NodeDemand("database", Resources(1, 2, 0)),)),
        "strategy": PlacementRequest((VM,), strategy="random"),
    }
    results = {name: plan(request, GROUP) for name, request in cases.items()}
    assert {r.code for r in results.values()} == {"validation_error"}
    assert "negative memory (-2)" in results["negative"].message
    assert "'database'" in results["role"].message
    assert "best_fit" in results["strategy"].message
