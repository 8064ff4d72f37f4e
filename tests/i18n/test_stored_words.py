"""Words the portal builds from stored values, in the reader's language (issue 14): the
API's placement preview (its spread and its per-node explanations), the audit sentences of
older events that stored English ("1 control planes + 2 workers"), every field an audit
event can name, and the API's problem texts.

The whole-site test (test_whole_site.py) reads the audit rows that today's code writes;
this one reads what older code wrote, and looks at the code for what no page shows yet."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from portal.audit import presenter
from portal.extensions import db
from portal.models import AuditEvent
from portal.provisioning import messages
from tests import factories as f
from tests.api.conftest import build_estate
from tests.conftest import log_in
from tests.i18n.leaks import data_strings, english_left

ZH = {"Accept-Language": "zh-TW"}
PORTAL = Path(__file__).resolve().parents[2] / "portal"


def test_the_api_preview_words_its_spread_and_explanations_for_the_reader(api, app):
    estate = build_estate()
    body = {"kind": "cluster", "name": "k", "tenant_id": estate.tenant_b.id,
            "group_id": estate.group.id, "version": "1.31.2", "control_planes": 1,
            "control_plane_flavor_id": estate.flavor.id, "workers": 2,
            "worker_flavor_id": estate.flavor.id}
    english = api.post("/placements/preview", estate.operator, body).get_json()
    chinese = api.post("/placements/preview", estate.operator, body, headers=ZH).get_json()
    assert english["ok"] and chinese["ok"]
    assert "worker" in english["spread"] and "leaves" in english["nodes"][0]["explanation"]
    said = [chinese["spread"], *(node["explanation"] for node in chinese["nodes"])]
    names = {server.name for server in estate.servers}
    for text in said:
        left = [w for w in english_left(f"<p>{text}</p>", names)
                if w not in ("best_fit", "spread")]
        assert re.search(r"[\u4e00-\u9fff]", text) and not left, text
    assert english["nodes"][0]["baremetal_id"] == chinese["nodes"][0]["baremetal_id"]


# What code before issue 14's last steps stored, as a database keeps it.
OLDER_EVENTS = [
    ("create", "k8s_cluster", {"nodes": {"from": None, "to": "3 control planes + 3 workers"},
                               "plugins": {"from": None, "to": "none"}}),
    ("assign", "k8s_cluster", {"maintainer": {"from": None,
                                              "to": "group Platform SRE (no responsibility)"}}),
    ("unassign", "k8s_cluster", {"maintainer": {"from": "group Platform SRE", "to": None}}),
    ("create", "api_token", {"token": {"from": None,
                                       "to": "rp_AbCdEf1… (read write, until 2027-03-01)"}}),
    ("create", "api_token", {"token": {
        "from": None, "to": "rp_AbCdEf2… (read, tenant acme, until 2027-03-01)"}}),
    ("delete", "k8s_cluster", {"status": {"from": "active", "to": "deleting"},
                               "bastion": {"from": "jump-1", "to": "deleting"}}),
    ("retry", "virtual_machine", {"job": {"from": None, "to": "delete"}}),
    ("download", "k8s_cluster", {"kubeconfig": {"from": None, "to": "downloaded"}}),
    ("update", "webhook", {"secret": {"from": None, "to": "(new secret)"},
                           "events": {"from": None, "to": ["vm.status_changed"]}}),
]


def test_older_events_stored_in_english_read_in_chinese(app):
    ops = f.user("ops", operator=True)
    for action, kind, changes in OLDER_EVENTS:
        db.session.add(AuditEvent(user_id=ops.id, username="ops", action=action,
                                  object_type=kind, object_id=None, object_label="kube-1",
                                  changes=changes))
    db.session.commit()
    client = app.test_client()
    assert log_in(client, "ops", f.PASSWORD).status_code == 302
    html = client.get("/audit/", headers=ZH).get_data(as_text=True)
    stored = {"Platform SRE", "jump-1", "acme", "rp_AbCdEf1", "rp_AbCdEf2"}  # names, prefixes
    assert english_left(html, data_strings() | stored) == []
    for words in ("3 個控制平面 + 3 個工作節點", "未指定職責",
                  "讀取 寫入", "租戶 acme", "已下載", "新的密鑰", "刪除中"):
        assert words in html, words
    assert "<code>vm.status_changed</code>" in html


def _recorded_fields() -> dict[str, str]:
    """Every field name an audit event can carry: the literal changes the code writes
    ({"name": {"from": …}} or changes["name"] = …) and the field tuples it snapshots (the
    modules' *_FIELDS and AUDITED tuples; FORM_FIELDS map forms, not events)."""
    found: dict[str, str] = {}
    for path in PORTAL.rglob("*.py"):
        if "protos" in path.parts or path.name == "presenter.py":
            continue
        source = path.read_text(encoding="utf-8")
        for name in re.findall(r'"([a-z_]+)": \{"(?:from|to)"', source):
            found.setdefault(name, str(path))
        for name in re.findall(r'changes\["([a-z_]+)"\] = \{', source):
            found.setdefault(name, str(path))
        if re.search(r"^(?:[A-Z]+_FIELDS|AUDITED) = ", source, re.M):
            module = importlib.import_module(
                ".".join(path.relative_to(PORTAL.parent).with_suffix("").parts))
            for constant, value in vars(module).items():
                if (constant.endswith("_FIELDS") or constant == "AUDITED") \
                        and constant != "FORM_FIELDS" and isinstance(value, tuple):
                    for name in value:
                        found.setdefault(name, f"{path}:{constant}")
    return found


def test_every_field_an_audit_event_names_has_a_label():
    fields = _recorded_fields()
    assert {"control_planes", "responsibility", "scopes", "cpu_limit"} <= fields.keys()
    unlabelled = {name: where for name, where in fields.items()
                  if name not in presenter.FIELD_LABELS and name not in presenter.REFERENCES
                  and name != "field"}  # "field" is the placeholder of docstrings
    assert unlabelled == {}


@pytest.mark.parametrize("path", sorted((PORTAL / "api").glob("*.py")), ids=lambda p: p.name)
def test_api_problem_texts_go_through_the_catalog(path):
    """A problem's detail is raised with a literal sentence only inside _()."""
    source = path.read_text(encoding="utf-8")
    bare = re.findall(r'(?:ApiError\([A-Z_]+, |not_found\(|invalid\("[a-z_.]+", )f?"[A-Z]',
                      source)
    assert bare == []


def test_refused_vm_actions_say_why_in_chinese(app):
    """The lifecycle's refusals (portal/provisioning/jobs.py) reach the VM page's flash."""
    from portal.models import ProvisionJob
    from tests.conftest import csrf_token_from

    group = f.group()
    server = f.server(group=group)
    tenant = f.tenant()
    vm = f.vm(tenant, server, f.flavor(), name="going", status="deleting")
    db.session.add(ProvisionJob(vm_id=vm.id, action="delete"))
    f.user("ops", operator=True)
    db.session.commit()
    client = app.test_client()
    assert log_in(client, "ops", f.PASSWORD).status_code == 302
    token = csrf_token_from(client.get(f"/vms/{vm.id}", headers=ZH).get_data(as_text=True))
    for action, words in (("delete", "虛擬機 going 的狀態已是刪除中。"),
                          ("retry", "虛擬機 going 已有一項進行中的工作（刪除）。")):
        html = client.post(f"/vms/{vm.id}/{action}", data={"csrf_token": token}, headers=ZH,
                           follow_redirects=True).get_data(as_text=True)
        assert words in html, action


def _claimed(vm_ids) -> dict[int, int]:
    """The queued jobs of these VMs, claimed by one agent: {vm id: job id}."""
    from portal.provisioning import jobs

    return {job.vm_id: job.id for job in jobs.claim("agent-t", limit=50)
            if job.vm_id in vm_ids}


def test_the_portal_s_own_vm_messages_read_in_chinese_and_the_driver_s_stay(app, api):
    """A VM's status message and a job's result message are stored in English (the API
    returns them as stored); the VM, VM group and cluster pages word the portal's own
    sentences in the reader's language, and what a driver said stays verbatim."""
    from portal.models import Baremetal, ProvisionJob, VirtualMachine
    from portal.provisioning import jobs
    from portal.scheduler import Resources
    from portal.scheduler.reservation import adjust_capacity

    estate = build_estate()
    f.user("ops", operator=True)
    db.session.commit()
    group = api.post("/vm-groups", estate.operator, {
        "name": "web", "tenant_id": estate.tenant_b.id, "group_id": estate.group.id,
        "spec_id": estate.flavor.id, "size": 7})
    assert group.status_code == 201, group.get_json()
    cluster = api.post("/clusters", estate.operator, {
        "name": "kube", "tenant_id": estate.tenant_b.id, "group_id": estate.group.id,
        "version": "1.31.2", "control_planes": 1, "control_plane_flavor_id": estate.flavor.id,
        "workers": 1, "worker_flavor_id": estate.flavor.id})
    assert cluster.status_code == 201, cluster.get_json()
    members = {m["name"]: m["id"] for m in group.get_json()["members"]}
    vm = {name: members[f"web-{i}"] for i, name in enumerate((
        "unbuilt", "building", "undeletable", "silent", "moving", "unmovable", "doomed"),
        start=1)}
    nodes = {node.role: node.id for node in db.session.scalars(
        select(VirtualMachine).where(VirtualMachine.k8s_cluster_id == cluster.get_json()["id"]))}

    def row(name):
        db.session.expire_all()
        return db.session.get(VirtualMachine, vm[name])

    jobs.request_delete(row("unbuilt"), None)  # its create still queued: cancelled
    db.session.commit()
    claimed = _claimed(set(vm.values()) | set(nodes.values()))
    for name in ("undeletable", "silent", "moving", "unmovable"):
        jobs.complete(claimed[vm[name]], "agent-t", True, "built")
    for name in ("building", "doomed", "undeletable", "silent"):
        jobs.request_delete(row(name), None)
        db.session.commit()
    jobs.complete(claimed[vm["doomed"]], "agent-t", False, "image missing")
    deletes = _claimed({vm["undeletable"], vm["silent"]})
    jobs.complete(deletes[vm["undeletable"]], "agent-t", False, "disk busy: /dev/vdb")
    jobs.complete(deletes[vm["silent"]], "agent-t", False, "")
    for name in ("moving", "unmovable"):
        moving = row(name)
        target = next(s for s in estate.servers if s.id != moving.baremetal_id)
        adjust_capacity(target.id, estate.group.id, Resources(moving.cpu, moving.memory,
                                                              moving.storage), sign=-1)
        jobs.request_migrate(moving, target.id, None)
        db.session.commit()
    jobs.complete(_claimed({vm["unmovable"]})[vm["unmovable"]], "agent-t", False,
                  "target unreachable")
    jobs.complete(claimed[nodes["worker"]], "agent-t", False, "")

    stored = {name: row(name).status_message for name in vm}
    moved_to = db.session.get(Baremetal, db.session.scalar(
        select(ProvisionJob.target_baremetal_id).where(ProvisionJob.vm_id == vm["moving"],
                                                       ProvisionJob.action == "migrate")))
    assert stored == {  # what the API returns, in any language: the English stored
        "unbuilt": "Deleted before it was built",
        "building": "Deleting once the agent finishes building it",
        "undeletable": "Delete failed: disk busy: /dev/vdb", "silent": "Delete failed",
        "moving": f"Migrating to {moved_to.name}",
        "unmovable": "Migration failed: target unreachable",
        "doomed": "Create failed before the delete: image missing"}
    said = api.get(f"/vms/{vm['undeletable']}", estate.operator, headers=ZH).get_json()
    assert said["status_message"] == "Delete failed: disk busy: /dev/vdb"

    client = app.test_client()
    assert log_in(client, "ops", f.PASSWORD).status_code == 302
    data = data_strings()
    assert not data & set(stored.values())  # the sentences are not data, their filling is
    expected = {
        "unbuilt": ["在建置完成前已刪除", "已取消：虛擬機已刪除"],
        "building": ["建置代理程式完成建置後即刪除"],
        "undeletable": ["刪除失敗：disk busy: /dev/vdb"], "silent": ["刪除失敗"],
        "moving": [f"正在遷移到 {moved_to.name}"],
        "unmovable": ["遷移失敗：target unreachable"],
        "doomed": ["刪除前建立已失敗：image missing"],
    }
    for name, words in expected.items():
        html = client.get(f"/vms/{vm[name]}", headers=ZH).get_data(as_text=True)
        for said in words:
            assert said in html, (name, said)
        assert stored[name] not in html, name
        assert english_left(html, data) == [], name
    html = client.get(f"/vm-groups/{group.get_json()['id']}", headers=ZH).get_data(as_text=True)
    for name in ("building", "undeletable", "silent", "moving", "unmovable"):
        assert expected[name][0] in html, name
    assert english_left(html, data) == []
    html = client.get(f"/clusters/{cluster.get_json()['id']}", headers=ZH).get_data(
        as_text=True)
    assert "建置失敗" in html and "provisioning failed" not in html
    assert english_left(html, data) == []


def test_kubeconfig_job_and_metrics_refusals_read_in_chinese(app, api, monkeypatch):
    """What an agent hears about a kubeconfig or a job that is not its own (problem+json),
    the cluster page when a kubeconfig cannot be decrypted, and a chart's "no data" reason
    when Prometheus does not answer — in the reader's language."""
    from portal.models import VirtualMachine
    from tests.metrics.prometheus_server import free_port

    estate = build_estate()
    f.user("ops", operator=True)
    db.session.commit()
    cluster = api.post("/clusters", estate.operator, {
        "name": "kube", "tenant_id": estate.tenant_b.id, "group_id": estate.group.id,
        "version": "1.31.2", "control_planes": 1, "control_plane_flavor_id": estate.flavor.id,
        "workers": 0}).get_json()
    node = db.session.scalar(select(VirtualMachine.id).where(
        VirtualMachine.k8s_cluster_id == cluster["id"]))
    (job,) = _claimed({node}).values()
    answer = {"agent": "agent-t", "succeeded": True, "kubeconfig": "  \n"}
    refused = api.post(f"/provision-jobs/{job}/complete", estate.operator, answer, headers=ZH)
    assert refused.status_code == 409
    assert refused.get_json()["detail"] == "kubeconfig 是空的。"
    english = api.post(f"/provision-jobs/{job}/complete", estate.operator, answer)
    assert english.get_json()["detail"] == "The kubeconfig is empty."
    foreign = api.post(f"/provision-jobs/{job}/complete", estate.operator,
                       {"agent": "agent-u", "succeeded": True}, headers=ZH)
    assert foreign.status_code == 409
    assert foreign.get_json()["detail"] == (
        f"工作 {job} 由 agent-t 處理，不是 agent-u（租約已過期，另一個建置代理程式接手了）。")
    built = api.post(f"/provision-jobs/{job}/complete", estate.operator, {
        "agent": "agent-t", "succeeded": True, "message": "built",
        "kubeconfig": "apiVersion: v1\nkind: Config\n"})
    assert built.status_code == 200, built.get_json()

    client = app.test_client()
    assert log_in(client, "ops", f.PASSWORD).status_code == 302
    monkeypatch.setitem(app.config, "PORTAL_ENCRYPTION_KEY", "another-key")
    html = client.get(f"/clusters/{cluster['id']}/kubeconfig", headers=ZH,
                      follow_redirects=True).get_data(as_text=True)
    assert ("叢集 kube 的 kubeconfig 無法解密：儲存之後 PORTAL_ENCRYPTION_KEY（或 "
            "SECRET_KEY）是否變更過？") in html
    unreadable = api.get(f"/clusters/{cluster['id']}/kubeconfig", estate.operator, headers=ZH)
    assert unreadable.status_code == 500
    assert unreadable.get_json()["code"] == "server_error"
    assert unreadable.get_json()["detail"].startswith("叢集 kube 的 kubeconfig 無法解密")

    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setitem(app.config, "PORTAL_PROMETHEUS_URL", url)
    html = client.get(f"/vms/{node}", headers=ZH).get_data(as_text=True)
    assert f"無資料：無法連線位於 {url} 的 Prometheus：" in html
    assert "unreachable" not in html
    said = api.get(f"/metrics?object_type=vm&object_id={node}", estate.operator, headers=ZH)
    assert said.status_code == 503
    assert said.get_json()["detail"].startswith(f"無法連線位於 {url} 的 Prometheus：")


@pytest.mark.parametrize("sentence", messages.SENTENCES, ids=lambda s: s.message_id)
def test_each_stored_sentence_is_read_back_in_chinese_with_its_filling(app, sentence):
    """What jobs.py stores is what the pages recognise: the filling (a driver's text with
    a colon in it, a server's name) comes back verbatim, the words around it in Chinese."""
    filling = {name: "tpe1-r01-s02: disk 100% busy"
               for name in sentence.pattern.groupindex}
    stored = sentence(**filling)
    assert messages.recognise(stored) == (sentence, filling)
    with app.app_context(), app.test_request_context(headers=ZH):  # a fresh g: its locale
        shown = messages.in_words(stored)
    assert re.search(r"[\u4e00-\u9fff]", shown) and shown != stored
    assert all(value in shown for value in filling.values())
    assert english_left(f"<p>{shown}</p>", filling.values()) == []
    with app.app_context(), app.test_request_context():
        assert messages.in_words(stored) == stored
