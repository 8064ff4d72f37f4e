"""The `exec` driver: the bridge to automation a site already has (Ansible, Terraform,
kubeadm scripts). For every job it runs the operator's command (SPEC 8.8):

- the job as one JSON document on standard input (``ClaimedJob.document()``: action, VM,
  tenant, flavor, server with its ``hypervisor_uri``, the target server of a migrate, the
  cluster with its nodes, role), and the essentials as ``PORTAL_*`` environment variables;
- exit 0 is success, anything else failure; the last line of output (stdout and stderr
  together) is the job's message, the whole output is kept with the job (truncated);
- exit 75 (EX_TEMPFAIL) means "not yet": the job goes back to the queue and is tried again
  after ``retry_delay`` seconds, up to ``max_attempts`` tries — how a worker waits for its
  cluster's control plane without holding an agent;
- past ``timeout`` seconds the command's whole process group is stopped (SIGTERM, then
  SIGKILL) and the job fails; so it is when the agent loses its lease on the job;
- a control plane's create may write the cluster's kubeconfig to ``$PORTAL_KUBECONFIG_OUT``.

The command is split like a shell would split it but runs without a shell; job data never
reaches a command line. docs/drivers.md shows what a command receives.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence

from portal.clusters import kubeconfig as kubeconfigs
from portal.provisioning.drivers import Answer, BaseDriver, Deferred, ProvisionFailed, Work
from portal.provisioning.jobs import ClaimedJob

EX_TEMPFAIL = 75
KILL_GRACE = 10.0  # seconds between SIGTERM and SIGKILL
DRAIN_GRACE = 2.0  # seconds to read what is left once the command has exited
# Not handed on: the agent's own credentials. A command that calls the portal gets its own.
WITHHELD = ("PORTAL_TOKEN",)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def job_environment(job: ClaimedJob, kubeconfig_out: str, job_dir: str) -> dict[str, str]:
    """The essentials of ``job`` as environment variables (always set; empty when the job
    has no such thing, so that `set -u` scripts work)."""
    values = {
        "PORTAL_JOB_ID": job.id,
        "PORTAL_JOB_ACTION": job.action,
        "PORTAL_JOB_ATTEMPT": job.attempts,
        "PORTAL_VM_ID": job.vm_id,
        "PORTAL_VM_NAME": job.vm_name,
        "PORTAL_VM_ROLE": job.role,
        "PORTAL_TENANT_ID": job.tenant_id,
        "PORTAL_TENANT_NAME": job.tenant_name,
        "PORTAL_FLAVOR_NAME": job.spec_name,
        "PORTAL_VM_CPU": job.cpu,
        "PORTAL_VM_MEMORY_GIB": job.memory,
        "PORTAL_VM_STORAGE_GIB": job.storage,
        "PORTAL_SERVER_ID": job.baremetal_id,
        "PORTAL_SERVER_NAME": job.baremetal_name,
        "PORTAL_HYPERVISOR_URI": job.hypervisor_uri,
        "PORTAL_TARGET_SERVER_ID": job.target_baremetal_id,
        "PORTAL_TARGET_SERVER_NAME": job.target_baremetal_name,
        "PORTAL_TARGET_HYPERVISOR_URI": job.target_hypervisor_uri,
        "PORTAL_CLUSTER_ID": job.k8s_cluster_id,
        "PORTAL_CLUSTER_NAME": job.k8s_cluster_name,
        "PORTAL_K8S_VERSION": job.k8s_version,
        "PORTAL_KUBECONFIG_OUT": kubeconfig_out,
        "PORTAL_JOB_DIR": job_dir,
    }
    return {k: "" if v is None else str(v).replace("\x00", "") for k, v in values.items()}


class ExecDriver(BaseDriver):
    def __init__(self, command: str | Sequence[str] | None = None, timeout: float = 1800,
                 retry_delay: int = 30, max_attempts: int = 40,
                 env: Mapping[str, str] | None = None, kill_grace: float = KILL_GRACE):
        command = command if command is not None else os.environ.get("PORTAL_AGENT_COMMAND")
        if not command:
            raise ValueError("give the command to run: --command or PORTAL_AGENT_COMMAND.")
        try:
            argv = shlex.split(command) if isinstance(command, str) else list(command)
        except ValueError as error:
            raise ValueError(f"cannot read the command {command!r}: {error}.") from None
        if not argv:
            raise ValueError("the command is empty.")
        if shutil.which(argv[0], path=(env or os.environ).get("PATH")) is None:
            raise ValueError(f"{argv[0]}: no such command (or not executable).")
        if timeout <= 0 or retry_delay < 1 or max_attempts < 1 or kill_grace < 0:
            raise ValueError("timeout, retry delay and attempts must be positive.")
        self.argv = argv
        self.timeout = float(timeout)
        self.retry_delay = int(retry_delay)
        self.max_attempts = int(max_attempts)
        self.env = dict(os.environ if env is None else env)
        self.kill_grace = kill_grace
        self.label = os.path.basename(argv[0])

    def create(self, job: ClaimedJob, work: Work) -> Answer:
        return self._run(job, work)

    def delete(self, job: ClaimedJob, work: Work) -> Answer:
        return self._run(job, work)

    def migrate(self, job: ClaimedJob, work: Work) -> Answer:
        return self._run(job, work)

    # ------------------------------------------------------------------------------------

    def _run(self, job: ClaimedJob, work: Work) -> Answer:
        with tempfile.TemporaryDirectory(prefix=f"portal-job-{job.id}-") as job_dir:
            kubeconfig_out = os.path.join(job_dir, "kubeconfig")
            env = {k: v for k, v in self.env.items() if k not in WITHHELD}
            env.update(job_environment(job, kubeconfig_out, job_dir))
            work.log(f"$ {shlex.join(self.argv)}  # job {job.id}: {job.action} {job.vm_name}, "
                     f"try {job.attempts}")
            code, last = self._execute(job, work, env)
            if code == 0:
                return self._succeeded(job, last, kubeconfig_out)
        if code == EX_TEMPFAIL:
            waiting = last or "not ready yet"
            if job.attempts >= self.max_attempts:
                raise ProvisionFailed(f"Gave up after {job.attempts} tries: {waiting}")
            raise Deferred(waiting, self.retry_delay)
        if last:
            raise ProvisionFailed(last)
        if code < 0:
            raise ProvisionFailed(f"{self.label} was killed by {signal.Signals(-code).name}.")
        raise ProvisionFailed(f"{self.label} exited with code {code}.")

    def _succeeded(self, job: ClaimedJob, last: str, kubeconfig_out: str) -> Answer:
        message = last or f"{self.label} finished {job.action} of {job.vm_name}"
        if job.action != "create" or not os.path.isfile(kubeconfig_out):
            return message
        with open(kubeconfig_out, encoding="utf-8", errors="replace") as file:
            text = file.read(16 * kubeconfigs.MAX_BYTES)  # enough to say how much too big
        if not text.strip():
            return message
        try:
            kubeconfigs.check(text)
        except kubeconfigs.KubeconfigError as error:
            raise ProvisionFailed(f"The kubeconfig in $PORTAL_KUBECONFIG_OUT: {error}") from None
        return message, text

    def _execute(self, job: ClaimedJob, work: Work, env: dict[str, str]) -> tuple[int, str]:
        """Run the command to its end (or its timeout); its exit code and last line."""
        try:
            process = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )
        except OSError as error:
            raise ProvisionFailed(f"Cannot run {self.label}: {error.strerror or error}.") from None
        last = [""]
        reader = threading.Thread(target=self._read, args=(process, work, last), daemon=True,
                                  name=f"exec-{job.id}-output")
        reader.start()
        feeder = threading.Thread(target=self._feed, args=(process, job), daemon=True,
                                  name=f"exec-{job.id}-input")
        feeder.start()
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                code = process.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            if work.lost.is_set():
                self._stop(process, reader)
                raise ProvisionFailed(
                    f"{self.label} was stopped: this agent lost the job to another one.")
            if time.monotonic() >= deadline:
                self._stop(process, reader)
                work.log(f"[portal agent] timed out after {self.timeout:g} s: stopped "
                         f"{self.label} and its process group")
                raise ProvisionFailed(
                    f"{self.label} timed out after {self.timeout:g} s and was stopped "
                    f"(last output: {last[0] or 'none'}).")
        reader.join(DRAIN_GRACE)
        if reader.is_alive():  # something it started still holds the output open
            _kill_group(process.pid, signal.SIGKILL)
            reader.join(DRAIN_GRACE)
        return code, last[0]

    @staticmethod
    def _feed(process: subprocess.Popen, job: ClaimedJob) -> None:
        try:
            process.stdin.write(json.dumps(job.document(), ensure_ascii=False).encode() + b"\n")
            process.stdin.close()
        except (BrokenPipeError, ValueError, OSError):
            pass  # the command does not read its input: its choice

    @staticmethod
    def _read(process: subprocess.Popen, work: Work, last: list[str]) -> None:
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            work.log(line)
            shown = ANSI.sub("", line).strip()
            if shown:
                last[0] = shown
        process.stdout.close()

    def _stop(self, process: subprocess.Popen, reader: threading.Thread) -> None:
        """SIGTERM to the whole process group, SIGKILL to what is left after the grace."""
        deadline = time.monotonic() + self.kill_grace
        _kill_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=self.kill_grace)
        except subprocess.TimeoutExpired:
            pass
        while _kill_group(process.pid, 0) and time.monotonic() < deadline:
            time.sleep(0.05)  # its children get the same grace to finish
        _kill_group(process.pid, signal.SIGKILL)
        process.wait()
        reader.join(DRAIN_GRACE)


def _kill_group(pgid: int, sig: int) -> bool:
    """Signal a process group; False when nothing is left in it."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True
