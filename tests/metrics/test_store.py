"""The embedded store: rollups equal hand-computed means and maxima bucket by bucket, are
idempotent, retention prunes each level, and reads pick the resolution from the range."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.metrics import query, store
from portal.models import (
    MetricRollup,
    metric_1d,
    metric_15m,
    metric_aggregate_1d,
    metric_aggregate_15m,
    metric_latest,
    metric_raw,
    utcnow,
)
from tests import factories as f
from tests.metrics.conftest import rows


@pytest.fixture
def vm(any_app):
    group = f.group()
    server = f.server(group=group)
    vm = f.vm(f.tenant(), server, f.flavor())
    db.session.commit()
    return vm


def at(base: datetime, minutes: float) -> datetime:
    return base + timedelta(minutes=minutes)


def write(object_id: int, points, object_type: str = "vm", metric: str = "cpu_util"):
    store.write([{"object_type": object_type, "object_id": object_id, "ts": ts, metric: v}
                 for ts, v in points])
    db.session.commit()


def table_rows(table):
    db.session.rollback()
    return [tuple(r) for r in db.session.execute(
        select(table).order_by(table.c.object_type, table.c.object_id, table.c.ts))]


def test_fifteen_minute_rollup_equals_the_hand_computed_means_and_maxima(vm):
    base = store.floor_bucket(utcnow()) - timedelta(hours=1)
    # Bucket [base, base+15): 0.2, 0.4, 0.9 (the last one second before the boundary);
    # bucket [base+15, base+30): 0.1 exactly on the boundary and 0.3; nothing after.
    write(vm.id, [(at(base, 0), 0.2), (at(base, 5), 0.4), (at(base, 14 + 59 / 60), 0.9),
                  (at(base, 15), 0.1), (at(base, 29), 0.3)])
    write(vm.id, [(at(base, 5), 10.0)], metric="memory_used_gib")  # same row: merged
    store.rollup_range("15m", base, at(base, 45))
    db.session.commit()
    got = {r.ts: r for r in db.session.execute(select(metric_15m))}
    assert set(got) == {base, at(base, 15)}
    first, second = got[base], got[at(base, 15)]
    assert first.cpu_util == pytest.approx(0.5) and first.cpu_util_max == pytest.approx(0.9)
    assert first.samples == 3
    assert first.memory_used_gib == pytest.approx(10.0)  # only one sample had memory
    assert second.cpu_util == pytest.approx(0.2) and second.cpu_util_max == pytest.approx(0.3)
    assert second.samples == 2 and second.memory_used_gib is None


def test_daily_rollup_weights_each_bucket_by_its_samples(vm):
    day = datetime(2026, 3, 1)
    bucket = {"object_type": "vm", "object_id": vm.id}
    values = [  # (ts, mean, max, samples)
        (day - timedelta(minutes=15), 0.9, 0.95, 15),  # the day before
        (day, 0.2, 0.4, 15),
        (day + timedelta(hours=12), 0.5, 0.8, 5),
        (day + timedelta(hours=23, minutes=45), 0.1, 0.1, 10),
        (day + timedelta(days=1), 0.7, 0.7, 15),  # the day after
    ]
    db.session.execute(metric_15m.insert(), [
        {**bucket, "ts": ts, "cpu_util": mean, "cpu_util_max": peak, "samples": n}
        for ts, mean, peak, n in values])
    db.session.commit()
    store.rollup_range("1d", day, day + timedelta(days=1))
    db.session.commit()
    [row] = db.session.execute(select(metric_1d)).all()
    assert row.ts == day and row.samples == 30
    assert row.cpu_util == pytest.approx((0.2 * 15 + 0.5 * 5 + 0.1 * 10) / 30)
    assert row.cpu_util_max == pytest.approx(0.8)


def test_groups_and_racks_roll_up_to_their_servers_mean_cpu_and_summed_use(vm):
    """Two servers of a group, split over two racks, and one of another group in the first
    rack: each bucket of a group or a rack is its servers' mean CPU and their summed memory
    and storage (each server's mean in the bucket first), the busiest one's CPU peak."""
    group, other = vm.baremetal.group, f.group()
    rack_a, rack_b = f.rack(), f.rack()
    a = f.server(group=group, rack=rack_a, rack_unit=1)
    b = f.server(group=group, rack=rack_b, rack_unit=1)
    c = f.server(group=other, rack=rack_a, rack_unit=3)
    db.session.commit()
    # Yesterday at 10:00: within the raw retention, and the half hour within one day
    # whatever the hour the test runs at (an hour before now crossed midnight at 00:45).
    base = store.floor_bucket(utcnow(), store.DAY) - store.DAY + timedelta(hours=10)
    samples = {  # server -> [(minute, cpu, memory, storage)]
        a: [(0, 0.2, 10, 100), (10, 0.4, 30, 100), (15, 0.9, 40, 100)],
        b: [(5, 0.6, 50, 200), (20, 0.1, 60, 200), (25, 0.3, 60, 200)],
        c: [(1, 1.0, 5, 1)],
    }
    store.write([{"object_type": "baremetal", "object_id": s.id, "ts": at(base, m),
                  "cpu_util": cpu, "memory_used_gib": mem, "storage_used_gib": disk}
                 for s, points in samples.items() for m, cpu, mem, disk in points])
    store.rollup_range("15m", base, at(base, 30))
    db.session.commit()
    got = {(r.object_type, r.object_id, r.ts): r for r in
           db.session.execute(select(metric_aggregate_15m))}
    assert set(got) == {("group", group.id, base), ("group", group.id, at(base, 15)),
                        ("group", other.id, base), ("rack", rack_a.id, base),
                        ("rack", rack_a.id, at(base, 15)), ("rack", rack_b.id, base),
                        ("rack", rack_b.id, at(base, 15))}
    first, second = got[("group", group.id, base)], got[("group", group.id, at(base, 15))]
    # Bucket 1: a's mean 0.3 (20 GiB), b's 0.6 (50 GiB); bucket 2: a 0.9 (40), b 0.2 (60).
    assert first.cpu_util == pytest.approx((0.3 + 0.6) / 2)
    assert first.cpu_util_max == pytest.approx(0.6)
    assert first.memory_used_gib == pytest.approx(20 + 50)
    assert first.memory_used_gib_max == pytest.approx(30 + 50)
    assert first.storage_used_gib == pytest.approx(300)
    assert (first.servers, first.samples) == (2, 3)
    assert second.cpu_util == pytest.approx((0.9 + 0.2) / 2)
    assert second.cpu_util_max == pytest.approx(0.9)
    assert second.memory_used_gib == pytest.approx(40 + 60)
    assert (second.servers, second.samples) == (2, 3)
    rack = got[("rack", rack_a.id, base)]  # a and c
    assert rack.cpu_util == pytest.approx((0.3 + 1.0) / 2) and rack.cpu_util_max == 1.0
    assert rack.memory_used_gib == pytest.approx(20 + 5) and rack.servers == 2
    assert got[("rack", rack_b.id, at(base, 15))].memory_used_gib == pytest.approx(60)

    # The day: each server's daily mean (its buckets weighted by their samples), then
    # across the servers.
    day = store.floor_bucket(base, store.DAY)
    store.rollup_range("1d", day, day + store.DAY)
    db.session.commit()
    daily = {(r.object_type, r.object_id): r for r in
             db.session.execute(select(metric_aggregate_1d))}
    mean_a, mean_b = (0.2 + 0.4 + 0.9) / 3, (0.6 + 0.1 + 0.3) / 3
    assert daily[("group", group.id)].ts == day
    assert daily[("group", group.id)].cpu_util == pytest.approx((mean_a + mean_b) / 2)
    assert daily[("group", group.id)].cpu_util_max == pytest.approx(0.9)
    assert daily[("group", group.id)].memory_used_gib == pytest.approx(
        (10 + 30 + 40) / 3 + (50 + 60 + 60) / 3)
    assert daily[("group", group.id)].samples == 6
    assert daily[("rack", rack_b.id)].cpu_util == pytest.approx(mean_b)


def test_the_group_chart_reads_the_aggregates_and_the_raw_tail(vm):
    """Up to the mark, the group's aggregate rows (one a bucket, not its servers' rows);
    after it, its servers' raw samples combined on the fly."""
    server = vm.baremetal
    twin = f.server(group=server.group)
    db.session.commit()
    now = store.floor_bucket(utcnow())
    mark = now - timedelta(minutes=30)
    db.session.add(MetricRollup(level="15m", done_until=mark))
    key = {"object_type": "group", "object_id": server.group_id, "servers": 2,
           "samples": 30}
    db.session.execute(metric_aggregate_15m.insert(), [
        {**key, "ts": mark - timedelta(minutes=15 * i), "cpu_util": 0.25,
         "memory_used_gib": 64.0, "storage_used_gib": 10.0} for i in (1, 2)])
    # The servers' own rollups disagree: they are not what a group's chart reads.
    db.session.execute(metric_15m.insert(), [
        {"object_type": "baremetal", "object_id": s.id, "ts": mark - timedelta(minutes=15),
         "cpu_util": 0.99, "samples": 15} for s in (server, twin)])
    db.session.commit()
    store.write([{"object_type": "baremetal", "object_id": s.id,
                  "ts": mark + timedelta(minutes=m), "cpu_util": cpu, "memory_used_gib": 8.0}
                 for s, cpu in ((server, 0.5), (twin, 0.7)) for m in (1, 2)])
    db.session.commit()
    start = now - timedelta(hours=24)
    got = store.aggregate_series("group", server.group_id, start, now, 240)
    cpu = [v for _, v in got["cpu_util"]]
    assert cpu[:2] == pytest.approx([0.25, 0.25]) and cpu[-1] == pytest.approx(0.6)
    assert [v for _, v in got["memory_used_gib"]][-1] == pytest.approx(16.0)
    assert got["storage_used_gib"] == [(t, pytest.approx(10.0)) for t, _ in got["cpu_util"][:2]]
    # Bucket starts step 900 s from the range's start (a 15-minute level).
    assert all((t - start).total_seconds() % 900 == 0 for t, _ in got["cpu_util"])
    assert store.aggregate_series("rack", 10**6, start, now, 240) == {
        "cpu_util": [], "memory_used_gib": [], "storage_used_gib": []}


def test_rolling_up_again_gives_the_same_rows(vm):
    base = store.floor_bucket(utcnow()) - timedelta(hours=2)
    write(vm.id, [(at(base, m), (m % 7) / 10) for m in range(0, 120, 3)])
    now = at(base, 125)
    store.rollup(now)
    once_15m, once_1d = table_rows(metric_15m), table_rows(metric_1d)
    assert len(once_15m) == 8
    for _ in range(2):
        store.rollup_range("15m", base, at(base, 120))
        db.session.commit()
        store.rollup(now + timedelta(minutes=15))
    assert table_rows(metric_15m) == once_15m
    assert table_rows(metric_1d) == once_1d


def test_the_rollup_mark_moves_and_late_samples_are_rolled_in(vm):
    now = store.floor_bucket(utcnow()) + timedelta(minutes=1)
    last = now - timedelta(minutes=16)  # inside the bucket that completed last
    write(vm.id, [(last, 0.4)])
    assert store.rollup(now)["15m"] == 1
    assert store.rollup(now + timedelta(seconds=30)) == {}  # nothing completed since
    write(vm.id, [(last + timedelta(minutes=1), 0.8)])  # came late, same bucket
    store.rollup(now + timedelta(minutes=15))
    [row] = db.session.execute(select(metric_15m)).all()
    assert row.samples == 2 and row.cpu_util == pytest.approx(0.6)


def test_retention_prunes_raw_after_48_h_rollups_after_30_days_daily_after_a_year(vm):
    now = utcnow().replace(microsecond=0)
    write(vm.id, [(now - timedelta(hours=49), 0.1), (now - timedelta(hours=47), 0.2)])
    key = {"object_type": "vm", "object_id": vm.id, "cpu_util": 0.5, "samples": 1}
    db.session.execute(metric_15m.insert(), [{**key, "ts": now - timedelta(days=31)},
                                             {**key, "ts": now - timedelta(days=29)}])
    db.session.execute(metric_1d.insert(), [{**key, "ts": now - timedelta(days=366)},
                                            {**key, "ts": now - timedelta(days=364)}])
    db.session.commit()
    gone = f.vm(vm.tenant, vm.baremetal, vm.spec)  # silent for 50 h: its latest row goes too
    db.session.commit()
    write(gone.id, [(now - timedelta(hours=50), 0.9)])
    aggregate = {"object_type": "group", "object_id": vm.baremetal.group_id, "servers": 1,
                 "samples": 1}
    db.session.execute(metric_aggregate_15m.insert(), [
        {**aggregate, "ts": now - timedelta(days=31)},
        {**aggregate, "ts": now - timedelta(days=29)}])
    db.session.execute(metric_aggregate_1d.insert(), [
        {**aggregate, "ts": now - timedelta(days=366)},
        {**aggregate, "ts": now - timedelta(days=364)}])
    db.session.commit()
    assert store.prune(now) == {"raw": 2, "15m": 1, "1d": 1, "aggregate 15m": 1,
                                "aggregate 1d": 1, "latest": 1}
    assert [r[2] for r in table_rows(metric_raw)] == [now - timedelta(hours=47)]
    assert [r[1] for r in table_rows(metric_latest)] == [vm.id]
    assert [r[2] for r in table_rows(metric_15m)] == [now - timedelta(days=29)]
    assert [r[2] for r in table_rows(metric_1d)] == [now - timedelta(days=364)]
    assert [r[2] for r in table_rows(metric_aggregate_15m)] == [now - timedelta(days=29)]
    assert [r[2] for r in table_rows(metric_aggregate_1d)] == [now - timedelta(days=364)]


def test_series_reads_raw_then_rollups_then_daily_by_range(vm):
    now = store.floor_bucket(utcnow())
    db.session.add(MetricRollup(level="15m", done_until=now))  # rolled up to now
    write(vm.id, [(now - timedelta(minutes=m), 0.5 + m / 1000) for m in (1, 2, 3, 61)])
    key = {"object_type": "vm", "object_id": vm.id, "samples": 15}
    db.session.execute(metric_15m.insert(), [
        {**key, "ts": now - timedelta(days=d), "cpu_util": 0.1 * d, "cpu_util_max": 0.9}
        for d in (1, 5, 20)])
    db.session.execute(metric_1d.insert(), [
        {**key, "ts": store.floor_bucket(now, store.DAY) - timedelta(days=d),
         "cpu_util": 0.01 * d} for d in (40, 100)])
    db.session.commit()

    hour = query.series("vm", [vm.id], ["cpu_util"], now - timedelta(hours=1), now)
    assert [v for _, v in hour[(vm.id, "cpu_util")]] == pytest.approx([0.503, 0.502, 0.501])
    week = query.series("vm", [vm.id], ["cpu_util"], now - timedelta(days=7), now)
    assert [v for _, v in week[(vm.id, "cpu_util")]] == pytest.approx([0.5, 0.1])
    month = query.series("vm", [vm.id], ["cpu_util"], now - timedelta(days=30), now)
    assert len(month[(vm.id, "cpu_util")]) == 3
    year = query.series("vm", [vm.id], ["cpu_util"], now - timedelta(days=365), now)
    assert [v for _, v in year[(vm.id, "cpu_util")]] == pytest.approx([1.0, 0.4])
    assert query.series("vm", [vm.id], ["memory_used_gib"], now - timedelta(hours=1),
                        now) == {}  # no data: absent, never zero


def test_a_step_averages_per_bucket_and_can_coarsen_the_table(vm):
    now = store.floor_bucket(utcnow())
    start = now - timedelta(hours=1)
    write(vm.id, [(start + timedelta(minutes=m), v)
                  for m, v in ((1, 0.2), (4, 0.4), (11, 0.9), (31, 0.5))])
    points = query.series("vm", [vm.id], ["cpu_util"], start, now, step=600)
    assert points[(vm.id, "cpu_util")] == [
        (start, pytest.approx(0.3)), (start + timedelta(minutes=10), pytest.approx(0.9)),
        (start + timedelta(minutes=30), pytest.approx(0.5))]
    store.rollup_range("15m", start, now)
    db.session.commit()
    coarse = query.series("vm", [vm.id], ["cpu_util"], start, now, step=1800)
    assert coarse[(vm.id, "cpu_util")] == [(start, pytest.approx(0.5)),
                                           (start + timedelta(minutes=30),
                                            pytest.approx(0.5))]


def test_latest_is_each_objects_newest_sample_since(vm, any_app):
    other = f.vm(vm.tenant, vm.baremetal, vm.spec)
    quiet = f.vm(vm.tenant, vm.baremetal, vm.spec)
    db.session.commit()
    now = utcnow().replace(microsecond=0)
    write(vm.id, [(now - timedelta(minutes=3), 0.1), (now - timedelta(minutes=1), 0.7)])
    write(other.id, [(now - timedelta(minutes=2), 0.3)])
    write(other.id, [(now - timedelta(minutes=1), 9.0)], metric="memory_used_gib")
    write(quiet.id, [(now - timedelta(minutes=30), 0.9)])
    found = query.latest("vm", [vm.id, other.id, quiet.id], "cpu_util",
                         now - timedelta(minutes=5))
    assert found == {vm.id: (now - timedelta(minutes=1), pytest.approx(0.7)),
                     other.id: (now - timedelta(minutes=2), pytest.approx(0.3))}
    assert query.latest("vm", [], "cpu_util", now) == {}
    with pytest.raises(ValueError):
        query.latest("vm", [vm.id], "pods_pending", now)
    assert rows() == 5


def test_buckets_not_rolled_up_yet_come_from_the_raw_samples(vm):
    now = store.floor_bucket(utcnow())
    mark = now - timedelta(hours=1)
    db.session.add(MetricRollup(level="15m", done_until=mark))
    key = {"object_type": "vm", "object_id": vm.id, "samples": 15}
    db.session.execute(metric_15m.insert(), [
        {**key, "ts": mark - timedelta(minutes=15), "cpu_util": 0.3},
        {**key, "ts": mark, "cpu_util": 0.99}])  # past the mark: not trusted, raw rules
    db.session.commit()
    write(vm.id, [(mark + timedelta(minutes=m), v)
                  for m, v in ((1, 0.2), (2, 0.4), (20, 0.8), (50, 0.6), (52, 0.8))])
    week = query.series("vm", [vm.id], ["cpu_util"], now - timedelta(days=7), now)
    assert week[(vm.id, "cpu_util")] == [
        (mark - timedelta(minutes=15), pytest.approx(0.3)), (mark, pytest.approx(0.3)),
        (mark + timedelta(minutes=15), pytest.approx(0.8)),
        (mark + timedelta(minutes=45), pytest.approx(0.7))]
    # Once the controller rolled them up, the rollups are read.
    store.rollup(now + timedelta(seconds=30))
    again = query.series("vm", [vm.id], ["cpu_util"], now - timedelta(days=7), now)
    assert [v for _, v in again[(vm.id, "cpu_util")]] == pytest.approx([0.3, 0.3, 0.8, 0.7])


def test_the_latest_table_agrees_with_the_raw_samples_whatever_the_order_of_writes(vm):
    """metric_latest (what latest() reads) against the raw samples it summarises: samples
    written late, out of order, metric by metric, duplicated within a batch — each metric's
    newest value wins, an older one never overwrites it."""
    now = utcnow().replace(microsecond=0)
    minutes = lambda m: now - timedelta(minutes=m)  # noqa: E731
    write(vm.id, [(minutes(1), 0.7)])
    write(vm.id, [(minutes(4), 0.2), (minutes(3), 0.3)])  # late: older than what is there
    write(vm.id, [(minutes(2), 12.0)], metric="memory_used_gib")
    store.write([{"object_type": "vm", "object_id": vm.id, "ts": minutes(0), "cpu_util": 0.5},
                 {"object_type": "vm", "object_id": vm.id, "ts": minutes(0), "cpu_util": 0.6}])
    db.session.commit()
    since = minutes(10)
    assert store.latest("vm", [vm.id], "cpu_util", since) == {
        vm.id: (minutes(0), pytest.approx(0.6))}
    assert store.latest("vm", [vm.id], "memory_used_gib", since) == {
        vm.id: (minutes(2), pytest.approx(12.0))}
    assert store.latest("vm", [vm.id], "memory_used_gib", minutes(1)) == {}
    assert store.latest("vm", [vm.id], "storage_used_gib", since) == {}


def test_minute_aggregates_give_a_short_chart_what_the_raw_samples_give(vm):
    """A group's chart within six hours reads the minutes the controller combined (one row
    a minute) and the raw tail after them: on a minute-aligned range the same points as
    combining every server's raw samples on the fly, in the same number of statements."""
    from portal.models import metric_aggregate_1m
    from tests.web.test_lists import count_queries

    server = vm.baremetal
    twin = f.server(group=server.group)
    other = f.server()  # another group: not counted
    db.session.commit()
    now = store.floor_bucket(utcnow(), store.MINUTE) + timedelta(seconds=20)
    start = now.replace(second=0) - timedelta(hours=1)
    # Every 30 s, at uneven seconds, two servers of the group; one sample missing.
    store.write([{"object_type": "baremetal", "object_id": s.id,
                  "ts": start + timedelta(seconds=7 + 30 * i),
                  "cpu_util": (i % 9) / 10 + k / 20, "memory_used_gib": 10.0 + i % 5 + k,
                  "storage_used_gib": 3.0 * (k + 1)}
                 for k, s in enumerate((server, twin, other)) for i in range(121)
                 if (k, i) != (1, 40)])
    db.session.commit()
    group = server.group_id
    db.session.commit()  # each read finds the marks in the database, as a request does
    with count_queries() as raw_reads:
        live = store.aggregate_series("group", group, start, now, 60)
    assert [level for level, *_ in store.aggregate_sources(start, now)] == ["raw"]

    assert store.rollup_minutes(now) > 60
    assert store.rollup_minutes(now + timedelta(seconds=5)) == 0  # nothing completed since
    minutes = table_rows(metric_aggregate_1m)
    ours = [r for r in minutes if r[:2] == ("group", group)]
    assert len(ours) == 60  # one row a minute, however many servers
    # The minute the twin missed a sample: two servers, three samples; the servers' means
    # averaged (CPU) or added up (memory).
    [one] = [r for r in ours if r[2] == start + timedelta(minutes=20)]
    assert one[9:] == (2, 3)
    assert one[3] == pytest.approx(((4 / 10 + 5 / 10) / 2 + 5 / 10 + 1 / 20) / 2)
    assert one[5] == pytest.approx((10 + 0 + 10 + 1) / 2 + 10 + 1 + 1)
    assert [level for level, *_ in store.aggregate_sources(start, now)] == ["1m", "raw"]
    db.session.commit()
    with count_queries() as minute_reads:
        combined = store.aggregate_series("group", group, start, now, 60)
    assert minute_reads["n"] == raw_reads["n"] + 1  # the minutes' mark, then the two reads
    assert combined.keys() == live.keys()
    for metric, points in live.items():
        assert [t for t, _ in combined[metric]] == [t for t, _ in points]
        assert [v for _, v in combined[metric]] == pytest.approx([v for _, v in points])
    # More servers: the same statements (one row a minute still).
    more = [f.server(group=server.group) for _ in range(5)]
    db.session.commit()
    store.write([{"object_type": "baremetal", "object_id": s.id,
                  "ts": start + timedelta(seconds=30 * i), "cpu_util": 0.5}
                 for s in more for i in range(120)])
    db.session.commit()
    db.session.delete(db.session.get(MetricRollup, "1m"))
    db.session.commit()
    store.rollup_minutes(now)
    db.session.commit()
    with count_queries() as many_reads:
        store.aggregate_series("group", group, start, now, 60)
    assert many_reads["n"] == minute_reads["n"]
    # Minutes past retention go at the next pass.
    store.rollup_minutes(now + store.MINUTE_RETENTION + timedelta(minutes=2))
    assert all(r[2] >= now + timedelta(minutes=1) for r in table_rows(metric_aggregate_1m))
