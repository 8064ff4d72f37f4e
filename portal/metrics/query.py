"""Placeholder until wave3-metrics-core merges: its query.py replaces this file."""


class SourceUnavailable(Exception):
    """The measurements cannot be read now; str() says why. Shown as "no data", never zero."""
