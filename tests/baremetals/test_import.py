"""CSV import of servers: all rows checked first, every bad row named by its line,
nothing imported unless every row is good; an existing serial updates its server."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from portal.baremetals import service
from portal.baremetals.counters import counter_drift
from portal.extensions import db
from portal.models import AuditEvent, Baremetal, BaremetalGroup
from tests import factories as f
from tests.baremetals.pages import client_for, post, text

HEADER = ("name,serial,status,region,dc,rack,rack_unit,size_u,group,total_cpu,total_memory,"
          "total_storage")


@pytest.fixture
def estate(app):
    rack = f.rack(name="tpe1-r01", region="tw-north", dc="tpe1", height_u=42)
    grp = f.group(name="north")
    other = f.group(name="south")
    busy = f.server(rack=rack, group=grp, name="busy-01", serial="SN-BUSY", rack_unit=10,
                    size_u=2, cpu=64, memory=256, storage=2000, region="tw-north", dc="tpe1")
    tenant, flavor = f.tenant(), f.flavor(cpu=8, memory=32, storage=100)
    f.vm(tenant, busy, flavor, name="api-1")
    db.session.commit()
    return SimpleNamespace(**locals())


def server_count() -> int:
    return db.session.scalar(select(func.count(Baremetal.id)))


def by_name(name: str) -> Baremetal | None:
    return db.session.scalar(select(Baremetal).where(Baremetal.name == name))


def run(client, csv_text: str, as_file: bool = False):
    if as_file:
        data = {"file": (io.BytesIO(csv_text.encode("utf-8")), "servers.csv")}
        return post(client, "/servers/import", data, content_type="multipart/form-data")
    return post(client, "/servers/import", {"text": csv_text})


GOOD = "\n".join([
    HEADER,
    "web-01,SN-W1,active,,,tpe1-r01,1,1,north,32,128,1000",
    "web-02,SN-W2,,,,tpe1-r01,2,2,north,32,128,1000",
    "loose-01,SN-L1,maintenance,tw-north,tpe1,,,,,8,16,100",
])


def test_good_file_imports_everything_with_counters_and_audit(ops, estate):
    before = db.session.get(BaremetalGroup, estate.grp.id).total_cpu
    response = run(ops, GOOD, as_file=True)
    assert response.status_code == 302
    assert "3 created, 0 updated" in text(ops.get("/servers/"))
    web2 = by_name("web-02")
    assert (web2.rack.name, web2.rack_unit, web2.size_u, web2.region, web2.dc) == (
        "tpe1-r01", 2, 2, "tw-north", "tpe1")
    assert web2.status == "active" and web2.group.name == "north"
    assert by_name("loose-01").rack_id is None
    grp = db.session.get(BaremetalGroup, estate.grp.id)
    assert grp.total_cpu == before + 64 and counter_drift() == []
    created = db.session.scalars(select(AuditEvent.object_label).where(
        AuditEvent.object_type == "baremetal", AuditEvent.action == "create")).all()
    assert sorted(created) == ["loose-01", "web-01", "web-02"]


def test_one_bad_row_among_good_ones_imports_nothing_and_names_its_line(ops, estate):
    rows = GOOD.splitlines()
    rows.insert(2, "bad-01,SN-B1,active,,,tpe1-r01,11,1,north,8,8,8")  # line 3: on busy-01
    response = run(ops, "\n".join(rows))
    html = text(response)
    assert response.status_code == 422
    assert "Nothing was imported: 1 problem to fix first." in html
    assert ("line 3: Unit 11 of rack tpe1-r01 is taken by busy-01 (U10–U11).") in html
    assert server_count() == 1 and counter_drift() == []


def test_every_bad_row_is_reported(app, estate):
    csv_text = "\n".join([
        HEADER,
        "ok-01,SN-OK1,active,,,tpe1-r01,20,2,north,8,8,8",
        "ok-02,SN-OK2,active,,,tpe1-r01,21,1,north,8,8,8",        # overlaps line 2
        "ok-03,SN-OK1,active,,,,,,,8,8,8",                        # serial of line 2
        "ok-01,SN-OK4,active,,,,,,,8,8,8",                        # name of line 2
        "busy-01,SN-OTHER,active,,,,,,,8,8,8",                    # name of another server
        "x-06,SN-6,sleeping,,,nowhere,1,1,nogroup,8,8,8",
        "x-07,SN-7,active,,,tpe1-r01,41,3,,8,8,8",
        "x-08,SN-8,active,,,tpe1-r01,abc,1,,8,,8",
        "x-09,SN-9,active,,khh1,tpe1-r01,30,1,,8,8,8",
        "",
        "x-11,SN-11,active,,,,,,",
    ])
    with pytest.raises(service.ImportRefused) as refused:
        service.import_servers(csv_text)
    assert refused.value.problems == [
        "line 3: Unit 21 of rack tpe1-r01 is taken by ok-01 on line 2 (U20–U21).",
        "line 4: serial SN-OK1 is also on line 2.",
        "line 5: name ok-01 is also on line 2.",
        "line 6: server busy-01 already exists with serial SN-BUSY.",
        "line 7: there is no rack named nowhere. there is no group named nogroup. "
        "Status is one of active, maintenance, offline, decommissioned.",
        "line 8: Units 41–43 do not fit in rack tpe1-r01, which has units 1–42.",
        "line 9: rack_unit 'abc' is not a whole number. total_memory is required for a new "
        "server.",
        "line 10: Rack tpe1-r01 is in DC tpe1; leave DC empty to take the rack's.",
        "line 12: 9 cells, but the header names 12 columns.",
    ]
    db.session.rollback()
    assert server_count() == 1


def test_every_problem_of_a_row_is_reported_not_only_the_first(app, estate):
    """A row with a bad status that also sits on another server, and a row whose serial
    has a space and repeats an earlier one: each problem of each row is said."""
    csv_text = "\n".join([
        HEADER,
        "ok-01,SN-OK1,active,,,,,,,8,8,8",
        "x-03,SN-3,sleeping,,,tpe1-r01,11,1,north,8,8,8",       # bad status AND on busy-01
        "x-04,SN OK1,active,,,,,,,8,8,8",                          # a space, and...
        "x-05,SN OK1,active,,khh1,tpe1-r01,41,3,,8,8,8",           # ...repeated; DC; U41-43
    ])
    with pytest.raises(service.ImportRefused) as refused:
        service.import_servers(csv_text)
    assert refused.value.problems == [
        "line 3: Status is one of active, maintenance, offline, decommissioned. "
        "Unit 11 of rack tpe1-r01 is taken by busy-01 (U10–U11).",
        "line 4: A serial has at most 64 characters and no spaces.",
        "line 5: A serial has at most 64 characters and no spaces. "
        "Rack tpe1-r01 is in DC tpe1; leave DC empty to take the rack's. "
        "serial SN OK1 is also on line 4. "
        "Units 41–43 do not fit in rack tpe1-r01, which has units 1–42.",
    ]
    db.session.rollback()
    assert server_count() == 1


def test_reimport_updates_by_serial_with_the_rules_of_edit(ops, estate):
    assert run(ops, GOOD).status_code == 302
    update = "\n".join([
        "serial,name,total_cpu,rack_unit,group",
        "SN-W1,web-01-renamed,48,30,",
        "SN-W2,web-02,,,south",
        "SN-L1,loose-01,,,",
    ])
    response = run(ops, update)
    assert response.status_code == 302
    assert "0 created, 2 updated, 1 unchanged" in text(ops.get("/servers/"))
    renamed = by_name("web-01-renamed")
    assert (renamed.serial, renamed.total_cpu, renamed.available_cpu, renamed.rack_unit) == (
        "SN-W1", 48, 48, 30)
    assert by_name("web-02").group.name == "south"
    assert server_count() == 4 and counter_drift() == []
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.object_id == renamed.id, AuditEvent.action == "import")).one()
    assert event.changes["name"] == {"from": "web-01", "to": "web-01-renamed"}


def test_reimport_refuses_what_edit_refuses_for_servers_with_vms(ops, estate):
    csv_text = "\n".join([
        "name,serial,status,group,total_cpu",
        "busy-01,SN-BUSY,offline,south,4",
    ])
    html = text(run(ops, csv_text))
    assert ("line 2: Server busy-01 cannot go offline while 1 VM holds resources on it: "
            "api-1.") in html
    assert "Server busy-01 cannot change group while 1 VM holds" in html
    assert "has 8 cores allocated to its VMs: the total cannot go below 8." in html
    busy = by_name("busy-01")
    assert (busy.status, busy.group.name, busy.total_cpu) == ("active", "north", 64)


def test_bom_cjk_and_header_case_are_accepted(ops, estate):
    csv_text = "\ufeffName,Serial,Rack,Rack_Unit,Total_CPU,Total_Memory,Total_Storage\n" \
               "台北-資料庫-01,SN-CJK,tpe1-r01,40,16,64,500\n"
    response = post(ops, "/servers/import",
                    {"file": (io.BytesIO(csv_text.encode("utf-8")), "伺服器.csv")},
                    content_type="multipart/form-data")
    assert response.status_code == 302
    assert by_name("台北-資料庫-01").rack_unit == 40


@pytest.mark.parametrize("content, message", [
    (b"", "line 1: the file is empty"),
    (b"name,serial,colour\n", "line 1: unknown column &#39;colour&#39;; the columns are"),
    (b"name,total_cpu\n", "line 1: the header needs the column serial."),
    (b"name,serial\n", "The file has a header but no rows."),
    ("name,serial\nx,y\n".encode("utf-16"), "The file is not UTF-8 text"),
])
def test_unusable_files_are_explained(ops, estate, content, message):
    response = post(ops, "/servers/import", {"file": (io.BytesIO(content), "s.csv")},
                    content_type="multipart/form-data")
    assert response.status_code == 422 and message in text(response)
    assert server_count() == 1


def test_template_and_format_are_offered(ops, estate):
    page = text(ops.get("/servers/import"))
    assert "total_storage" in page and "updates" in page
    template = ops.get("/servers/import/template.csv")
    assert template.mimetype == "text/csv"
    assert template.get_data(as_text=True).splitlines()[0] == HEADER + ",hypervisor_uri"


def test_only_operators_import(app, estate):
    f.maintainer(account="oncall")
    db.session.commit()
    client = client_for(app, "m", maintainer_account="oncall")
    assert client.get("/servers/import").status_code == 403
    assert run(client, GOOD).status_code == 403


def test_import_and_reimport_on_both_databases(any_app):
    rack, grp = f.rack(name="r1", height_u=10), f.group(name="g1")
    db.session.commit()
    first = "\n".join([HEADER, "a,SA,,,,r1,1,2,g1,8,8,8", "b,SB,,,,r1,3,1,g1,4,4,4"])
    assert len(service.import_servers(first).created) == 2
    # a (U1–U2) takes b's unit 3 while b moves to the bottom: fine in any row order.
    swap = "\n".join(["serial,name,rack,rack_unit", "SA,a,r1,3", "SB,b,r1,1"])
    result = service.import_servers(swap)
    assert sorted(result.updated) == ["a", "b"]
    assert [(s.name, s.rack_unit) for s in db.session.scalars(
        select(Baremetal).order_by(Baremetal.name))] == [("a", 3), ("b", 1)]
    assert db.session.get(BaremetalGroup, grp.id).total_cpu == 12 and counter_drift() == []
    with pytest.raises(service.ImportRefused):
        service.import_servers("\n".join([HEADER, "c,SC,,,,r1,4,1,g1,1,1,1"]))
    db.session.rollback()
    assert rack.id and db.session.scalar(select(func.count(Baremetal.id))) == 2
