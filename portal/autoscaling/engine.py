"""The scaling decision of a VM group, as a pure function of plain data (no Flask, no
database): what Kubernetes' Horizontal Pod Autoscaler does, with AWS's warm-up.

- desired = ceil(current × value / target), where value is the members' average;
- held when the ratio value/target is within ``tolerance`` of 1;
- scale-up at once; scale-down only to the highest recommendation of the stabilisation
  window (HPA's behaviour.scaleDown.stabilizationWindowSeconds, 300 s);
- members younger than the warm-up are left out of the average; on the way up they count
  as idle (so a scale-up in flight is not asked for twice), and nothing scales down while
  one warms up;
- members in service without a fresh sample: on the way up they count as idle (HPA's
  conservative fill-in), and they stop any scale-down — missing or stale data never scales
  down; with no fresh sample at all the size is held;
- finally clamped to [min, max].

Explanations are message ids with named parameters (``N_`` marks them for the catalog), so
that a page can show them in its reader's language while the API and webhooks carry the
English sentence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

EVALUATION_SECONDS = 30
# A sample older than this is stale: it no longer says anything about the load.
STALE_SECONDS = 180


def N_(message: str) -> str:  # noqa: N802 - the catalog's marker for deferred translation
    return message


@dataclass(frozen=True)
class Rules:
    min_size: int
    max_size: int
    target: float
    tolerance: float = 0.1
    scale_down_stabilization: float = 300
    warmup: float = 300
    stale_after: float = STALE_SECONDS
    metric: str = "cpu_util"


@dataclass(frozen=True)
class Member:
    """A member counted in the group's size: since when, and its newest sample if any."""

    id: int
    started_at: datetime
    sample: tuple[datetime, float] | None = None


@dataclass(frozen=True)
class Recommendation:
    at: datetime
    size: int


Note = tuple[str, dict[str, object]]


@dataclass(frozen=True)
class Evaluation:
    current: int
    raw_desired: int
    desired: int
    action: str  # scale_up | scale_down | none
    limits: tuple[str, ...]
    notes: tuple[Note, ...]
    value: float | None
    samples: int
    sample_age: float | None
    window: tuple[Recommendation, ...]
    members: tuple[dict, ...] = field(default_factory=tuple)

    @property
    def wants_change(self) -> bool:
        """Worth a decision record: the formula or the result differs from the size."""
        return self.raw_desired != self.current or self.desired != self.current

    @property
    def reason(self) -> str:
        """The explanation in English (API, webhooks, logs)."""
        return " ".join(message % params for message, params in self.notes)


def _figure(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _within(ratio: float, tolerance: float) -> bool:
    # A hair of slack: 0.9 / 1.0 must count as within a tolerance of 0.1.
    return abs(ratio - 1.0) <= tolerance + 1e-9


@dataclass(frozen=True)
class Tally:
    """What a decision depends on, counted over the members."""

    current: int
    warming: int = 0
    missing: int = 0
    fresh: int = 0
    fresh_sum: float = 0.0
    sample_age: float | None = None

    @property
    def serving(self) -> int:
        return self.missing + self.fresh

    @property
    def value(self) -> float | None:
        return self.fresh_sum / self.fresh if self.fresh else None


def evaluate(rules: Rules, members: Sequence[Member], now: datetime,
             window: Sequence[Recommendation] = (), detail: bool = True) -> Evaluation:
    """One evaluation of the policy at ``now``; ``window`` is what earlier evaluations
    recommended (the answer's ``window`` is the one to keep for the next). ``detail``
    adds each member's part to the answer (``members``), for the decision's inputs."""
    warm_cut = now - timedelta(seconds=rules.warmup)
    stale_cut = now - timedelta(seconds=rules.stale_after)
    state: dict[int, str] = {}
    values, oldest = [], None
    for i, m in enumerate(members):
        if m.started_at > warm_cut:
            state[i] = "warming"
        elif m.sample is None or m.sample[0] < stale_cut:
            state[i] = "missing"
        else:
            values.append(m.sample[1])
            oldest = m.sample[0] if oldest is None else min(oldest, m.sample[0])
    tally = Tally(current=len(members),
                  warming=sum(1 for v in state.values() if v == "warming"),
                  missing=sum(1 for v in state.values() if v == "missing"),
                  fresh=len(values), fresh_sum=sum(values),
                  sample_age=(now - oldest).total_seconds() if oldest is not None else None)
    inputs = tuple(
        {"id": m.id,
         "value": m.sample[1] if m.sample is not None else None,
         "age": round((now - m.sample[0]).total_seconds(), 1) if m.sample is not None else None,
         "state": state.get(i, "counted")}
        for i, m in enumerate(members)
    ) if detail else ()
    return decide(rules, tally, now, window, inputs)


def decide(rules: Rules, tally: Tally, now: datetime, window: Sequence[Recommendation] = (),
           inputs: tuple[dict, ...] = ()) -> Evaluation:
    """The decision from the counts alone (``evaluate`` counts; ``simulate`` knows them)."""
    current, value = tally.current, tally.value
    limits: list[str] = []
    notes: list[Note] = []
    common = {"metric": rules.metric, "target": _figure(rules.target), "current": current,
              "stale": int(rules.stale_after), "warmup": int(rules.warmup),
              "tolerance": _figure(rules.tolerance)}

    if value is None:
        raw = proposal = current
        limits.append("no_data")
        if current == 0:
            notes.append((N_("The group has no members, so there is no load to measure."), {}))
        else:
            notes.append((N_("No member in service sent a %(metric)s sample in the last "
                             "%(stale)s s: the size is held (missing data never scales "
                             "down)."), common))
    else:
        ratio = value / rules.target
        params = {**common, "value": _figure(value)}
        if _within(ratio, rules.tolerance):
            raw = proposal = current
            notes.append((N_("Average %(metric)s %(value)s is within %(tolerance)s of the "
                             "target %(target)s: no change."), params))
        else:
            raw = math.ceil(current * ratio - 1e-9)
            params["raw"] = raw
            if ratio > 1:
                notes.append((N_("Average %(metric)s %(value)s is above the target "
                                 "%(target)s: %(current)s × %(value)s / %(target)s → %(raw)s."),
                              params))
                proposal = _up(rules, tally, raw, limits, notes, params)
            else:
                notes.append((N_("Average %(metric)s %(value)s is below the target "
                                 "%(target)s: %(current)s × %(value)s / %(target)s → %(raw)s."),
                              params))
                proposal = _down(tally, raw, limits, notes, params)

    # Scale-down stabilisation: the highest recommendation of the window (this one included).
    horizon = now - timedelta(seconds=rules.scale_down_stabilization)
    kept = tuple(r for r in window if r.at > horizon) + (Recommendation(now, proposal),)
    stabilized = proposal
    if proposal < current:
        stabilized = min(current, max(r.size for r in kept))
        if stabilized > proposal:
            limits.append("stabilization")
            notes.append((N_("The highest recommendation of the last %(window)s s is "
                             "%(size)s: the scale-down waits out the stabilisation window."),
                          {"window": int(rules.scale_down_stabilization), "size": stabilized}))
    desired = stabilized
    if desired < rules.min_size:
        desired = rules.min_size
        limits.append("min")
        notes.append((N_("Raised to the policy's minimum of %(min)s."), {"min": rules.min_size}))
    elif desired > rules.max_size:
        desired = rules.max_size
        limits.append("max")
        notes.append((N_("Capped at the policy's maximum of %(max)s."), {"max": rules.max_size}))
    action = "scale_up" if desired > current else "scale_down" if desired < current else "none"
    return Evaluation(current, raw, desired, action, tuple(limits), tuple(notes), value,
                      tally.fresh, tally.sample_age, kept, inputs)


def _up(rules: Rules, tally: Tally, raw: int, limits, notes, params) -> int:
    if not tally.missing and not tally.warming:
        return raw
    # HPA's fill-in on the way up: members warming up or without a sample count as idle,
    # so members already being added are not asked for again.
    counted = tally.fresh + tally.missing + tally.warming
    ratio = tally.fresh_sum / (counted * rules.target)
    wanted = math.ceil(counted * ratio - 1e-9)
    if _within(ratio, rules.tolerance) or wanted <= tally.current:
        limits.append("warmup" if tally.warming else "missing_data")
        notes.append((N_("%(warming)s members warming up and %(missing)s without a sample "
                         "count as idle: the members already there cover the load."),
                      {**params, "warming": tally.warming, "missing": tally.missing}))
        return tally.current
    return wanted


def _down(tally: Tally, raw: int, limits, notes, params) -> int:
    if tally.missing:
        limits.append("missing_data")
        notes.append((N_("%(missing)s of %(serving)s members in service sent no sample in the "
                         "last %(stale)s s: no scale-down on partial data."),
                      {**params, "missing": tally.missing, "serving": tally.serving}))
        return tally.current
    if tally.warming:
        limits.append("warmup")
        notes.append((N_("%(warming)s members are still warming up (%(warmup)s s): no "
                         "scale-down until they serve."), {**params, "warming": tally.warming}))
        return tally.current
    return raw


# ----------------------------------------------------------------------------- simulate

EPOCH = datetime(2000, 1, 1)


@dataclass(frozen=True)
class SimulatedDecision:
    t: float
    current: int
    desired: int
    action: str
    reason: str


def simulate(rules: Rules, current: int,
             samples: Sequence[tuple[float, float]]) -> list[SimulatedDecision]:
    """Replay a series ``(t seconds, value)``, one evaluation per sample: every member
    reports the value, and a decided change takes effect at once (no warm-up)."""
    decisions = []
    window: tuple[Recommendation, ...] = ()
    for t, value in samples:
        now = EPOCH + timedelta(seconds=t)
        tally = Tally(current=current, fresh=current, fresh_sum=value * current,
                      sample_age=0.0 if current else None)
        result = decide(rules, tally, now, window)
        window = result.window
        decisions.append(SimulatedDecision(t, current, result.desired, result.action,
                                           result.reason))
        current = result.desired
    return decisions


def next_backoff(previous_seconds: int) -> int:
    """After a refused scale-up: 5 minutes, doubling up to 30 (cluster-autoscaler's
    backoff after quota errors)."""
    return 300 if previous_seconds <= 0 else min(previous_seconds * 2, 1800)
