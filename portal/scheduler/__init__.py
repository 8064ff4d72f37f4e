"""VM and cluster placement (SPEC 3).

The pure planning core lives here and in the modules beside it: plain data in, a ``Plan``
or a ``Refusal`` out, no Flask and no database, so pages, the API, benchmarks and tests all
drive it the same way. ``HostTable`` is an optional, faster form of a group's hosts for
callers that decide again and again over one group. The reservation layer
(``reservation.py``) reads the database, calls ``plan()`` and commits the result.
"""

from portal.scheduler.core import plan
from portal.scheduler.data import (
    DEFAULT_STRATEGY,
    DIMENSIONS,
    ROLES,
    Constraints,
    Host,
    NodeDemand,
    PlacementRequest,
    Plan,
    Refusal,
    Resources,
)
from portal.scheduler.explain import INSUFFICIENT_CAPACITY, QUOTA_EXCEEDED, VALIDATION_ERROR
from portal.scheduler.strategies import STRATEGIES, Strategy
from portal.scheduler.table import HostTable

__all__ = [
    "DEFAULT_STRATEGY",
    "DIMENSIONS",
    "INSUFFICIENT_CAPACITY",
    "QUOTA_EXCEEDED",
    "ROLES",
    "STRATEGIES",
    "VALIDATION_ERROR",
    "Constraints",
    "Host",
    "HostTable",
    "NodeDemand",
    "PlacementRequest",
    "Plan",
    "Refusal",
    "Resources",
    "Strategy",
    "plan",
]
