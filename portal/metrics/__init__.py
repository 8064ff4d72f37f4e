"""Measured utilisation beside allocated capacity (SPEC §8.4)."""
