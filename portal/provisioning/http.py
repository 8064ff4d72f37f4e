"""The agent's queue over the JSON API, so that agents run on other machines:
``flask agent run --url https://portal.example --token rp_…``. Jobs are claimed and
completed through POST /api/v1/provision-jobs/claim and …/{id}/complete with an
operator's (service account's) token; the agent loop is the same as in-process."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict
from typing import Any

from portal.provisioning import jobs
from portal.provisioning.drivers import MetricTarget

API_PREFIX = "/api/v1"
TARGET_PAGE = 5000
METRICS_BATCH = 1000


class QueueUnavailable(RuntimeError):
    """The portal did not answer as expected (down, wrong URL, bad token); the agent logs it
    and tries again at its next poll."""


class HttpQueue:
    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        base = url.rstrip("/")
        self.base = base if base.endswith(API_PREFIX) else base + API_PREFIX
        self.token = token
        self.timeout = timeout

    def _post(self, path: str, body: dict[str, Any] | None,
              method: str = "POST") -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            try:
                payload = json.loads(error.read() or b"{}")
            except ValueError:
                payload = {}
            return error.code, payload
        except (urllib.error.URLError, TimeoutError, ValueError) as error:
            raise QueueUnavailable(f"{self.base}{path}: {error}") from error

    def claim(self, agent: str, limit: int, lease_seconds: int,
              scope: jobs.ClaimScope | None = None) -> list[jobs.ClaimedJob]:
        request = {"agent": agent, "limit": limit, "lease_seconds": lease_seconds}
        if scope:
            request.update({k: list(v) for k, v in asdict(scope).items() if v})
        status, body = self._post("/provision-jobs/claim", request)
        if status != 200:
            raise QueueUnavailable(_explain(status, body))
        return [jobs.ClaimedJob.from_dict(item) for item in body["items"]]

    def complete(self, job_id: int, agent: str, succeeded: bool, message: str,
                 kubeconfig: str | None = None, output: str = "") -> None:
        answer = {"agent": agent, "succeeded": succeeded,
                  "message": jobs.clean_message(message), "output": jobs.clean_output(output)}
        if kubeconfig is not None:
            answer["kubeconfig"] = kubeconfig
        status, body = self._post(f"/provision-jobs/{job_id}/complete", answer)
        if status == 409:  # the lease expired and another agent took the job
            raise jobs.JobError(body.get("detail", f"job {job_id}: conflict"))
        if status != 200:
            raise QueueUnavailable(_explain(status, body))

    def heartbeat(self, job_id: int, agent: str, lease_seconds: int,
                  message: str | None = None) -> None:
        beat: dict[str, Any] = {"agent": agent, "lease_seconds": lease_seconds}
        if message is not None:
            beat["message"] = jobs.clean_message(message)
        status, body = self._post(f"/provision-jobs/{job_id}/heartbeat", beat)
        if status == 409:  # no longer this agent's job
            raise jobs.JobError(body.get("detail", f"job {job_id}: conflict"))
        if status != 200:
            raise QueueUnavailable(_explain(status, body))


    def metric_targets(self, scope: jobs.ClaimScope | None = None) -> list[MetricTarget]:
        """What to measure: GET /metrics/targets, page by page."""
        found: list[MetricTarget] = []
        params: list[tuple[str, str]] = []
        if scope:
            for name, values in (("region", scope.regions), ("dc", scope.dcs),
                                 ("group", scope.groups)):
                params += [(name, value) for value in values]
        while True:
            query = urllib.parse.urlencode(params + [("limit", str(TARGET_PAGE)),
                                                     ("offset", str(len(found)))])
            status, body = self._post(f"/metrics/targets?{query}", None, "GET")
            if status != 200:
                raise QueueUnavailable(_explain(status, body))
            found += [MetricTarget(**item) for item in body["items"]]
            if not body["items"] or len(found) >= body["total"]:
                return found

    def report_metrics(self, agent: str, driver: str, samples: list[dict]) -> int:
        """POST /metrics in batches; the samples accepted."""
        accepted = 0
        for start in range(0, len(samples), METRICS_BATCH):
            status, body = self._post("/metrics", {
                "agent": agent, "driver": driver,
                "samples": samples[start:start + METRICS_BATCH]})
            if status != 200:
                raise QueueUnavailable(_explain(status, body))
            accepted += body["accepted"]
        return accepted


def _explain(status: int, body: dict[str, Any]) -> str:
    return f"HTTP {status}: {body.get('detail') or body.get('title') or 'unexpected answer'}"
