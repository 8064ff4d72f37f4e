"""Webhooks (SPEC 8.6): an outbox written with each change, delivered signed, with retries."""
