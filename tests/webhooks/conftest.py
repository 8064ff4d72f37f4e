from tests.api.conftest import api, estate  # noqa: F401  (the API fixtures, reused)
