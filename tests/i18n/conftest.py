"""The API fixtures (a bearer client) for the API language tests here."""

from tests.api.conftest import api  # noqa: F401
