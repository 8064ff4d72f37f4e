"""The API fixtures (an estate, a bearer client) for the token and visibility tests here."""

from tests.api.conftest import api, estate  # noqa: F401
