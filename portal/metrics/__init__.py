"""Measured utilisation (SPEC 8.4): agents' samples in, series out.

- ``portal.metrics.query``: the read interface every page and service uses — ``latest``,
  ``series``, ``agents``, ``stale_agents`` — reading the embedded store or, where
  ``PORTAL_PROMETHEUS_URL`` is set, Prometheus (``portal.metrics.prometheus``).
- ``portal.metrics.ingest``: validation and writing of an agent's batch.
- ``portal.metrics.store``: the embedded store's tables, rollups and retention.
- ``portal.metrics.presence``: when each agent was last heard from.
"""
