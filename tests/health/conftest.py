"""The API fixtures (an estate, a bearer client) for the metrics tests here."""

from tests.api.conftest import api, estate  # noqa: F401
