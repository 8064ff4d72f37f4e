"""The OpenAPI document is what client generators read: a standard validator finds no error
in it, and it documents the automation headers (SPEC 8.6)."""

from __future__ import annotations

from openapi_spec_validator import OpenAPIV31SpecValidator


def document(api) -> dict:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_the_document_is_valid_openapi(api):
    errors = [f"{list(error.absolute_path)}: {error.message}"
              for error in OpenAPIV31SpecValidator(document(api)).iter_errors()]
    assert errors == []


def test_update_bodies_have_no_null_default_on_non_nullable_fields(api):
    rack_change = document(api)["components"]["schemas"]["RackChange"]
    assert "default" not in rack_change["properties"]["name"]
    assert rack_change["properties"]["name"]["type"] == "string"


def test_writes_document_the_idempotency_key_and_the_job_protocol_does_not(api):
    paths = document(api)["paths"]

    def headers(path, method):
        return [p["name"] for p in paths[f"/api/v1{path}"][method].get("parameters", ())
                if p["in"] == "header"]

    for path, method in (("/vms", "post"), ("/vms/{vm_id}", "delete"),
                         ("/clusters", "post"), ("/clusters/{cluster_id}/scale", "post")):
        assert headers(path, method) == ["Idempotency-Key"], (path, method)
    for path in ("/provision-jobs/claim", "/provision-jobs/{job_id}/complete",
                 "/provision-jobs/{job_id}/heartbeat"):
        assert headers(path, "post") == [], path
    assert headers("/vms", "get") == []
    created = paths["/api/v1/vms"]["post"]["responses"]["201"]
    assert "Idempotent-Replayed" in created["headers"]


def test_waiting_reads_document_wait_for_timeout_and_wait_result(api):
    paths = document(api)["paths"]
    for path in ("/vms/{vm_id}", "/clusters/{cluster_id}", "/provision-jobs/{job_id}"):
        get = paths[f"/api/v1{path}"]["get"]
        query = {p["name"]: p["schema"] for p in get["parameters"] if p["in"] == "query"}
        assert "active" in query["wait_for"]["enum"] or "succeeded" in query["wait_for"]["enum"]
        assert query["timeout"]["maximum"] == 20 and query["timeout"]["minimum"] == 0
        assert "Wait-Result" in get["responses"]["200"]["headers"]
