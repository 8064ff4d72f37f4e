import pytest

from tests.baremetals.pages import client_for


@pytest.fixture
def ops(app):
    return client_for(app, "ops", operator=True)
