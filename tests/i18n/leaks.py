"""Finding English interface text on pages rendered in Traditional Chinese.

`english_left(html, data)` returns the English words a reader of the zh-TW page would see
that are not data: the page's visible text and the attributes people read (title,
placeholder, aria-label, alt, a submit button's value), minus everything stored in the
database's free-text columns (names, descriptions, serials …: data stays as entered; of the
portal's own sentences in status and result messages, only their filling),
minus the few terms that stay Latin in Taiwanese usage (CPU, GiB, Kubernetes, API …, see
docs/glossary.zh-TW.md). Enum values (statuses, roles) are not data: they are shown
translated, so they count.

`crawl(client, start)` visits every page reachable by links from ``start`` (one page per
endpoint shape, so 80 server pages cost one visit) and yields (url, html).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from sqlalchemy import CheckConstraint, String, Text, select

from portal.extensions import db

# Terms that stay Latin in the zh-TW interface (docs/glossary.zh-TW.md), and units.
ALLOWED = {
    "API", "APIs", "AS", "ASN", "BGP", "Bearer", "CIDR", "CPU", "CPUs", "CSV", "DC", "DNS",
    "GiB", "GB", "HMAC", "HTTP", "HTTPS", "ID", "IP", "IPv4", "IPv6", "JSON", "JavaScript",
    "K8s", "KiB", "Kubernetes", "Pod", "Pods", "MiB", "MB", "Mesh",
    "OpenAPI", "PromQL", "Prometheus",
    "SHA", "SSH", "Service", "TB", "TiB", "TLS", "ToR", "U", "UTC", "URI", "URL", "UUID",
    "VLAN", "VM", "VMs", "Webhook", "Webhooks", "YAML", "cilium", "istio", "kubeconfig",
    "mTLS", "vCPU", "vCPUs", "gRPC", "libvirt", "KVM", "QEMU", "Hypervisor", "RP",
    "Istio", "Cilium", "Calico", "calico", "Longhorn", "longhorn", "GitLab", "GitHub",
    "Actions", "CI", "CD", "Ansible", "Terraform", "kubeadm", "SQLite", "PostgreSQL",
    "PgBouncer", "HPA", "Grafana", "node_exporter", "best_fit", "worst_fit", "shape_fit",
    "scarcity_fit",
    "dry_run", "cpu_util", "memory_used_gib", "storage_used_gib", "pods_pending",
    "cluster-autoscaler", "Horizontal", "Autoscaler", "UTF", "Idempotency", "Key", "Enter", "Tab",
    "Esc", "Ctrl", "Shift", "OK",
    "English", "Chen", "Mei", "ling",
    # The cluster wizard's plugin catalogue: product names (portal/clusters/service.py).
    "flannel", "Flannel", "prometheus", "loki", "Loki", "rook-ceph", "Rook", "Ceph",
    "ingress-nginx", "NGINX", "Ingress", "traefik", "Traefik", "cert-manager", "CNI", "eBPF",
    "ACME", "CA",
}
READ_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt", "aria-description")
SKIP_ELEMENTS = {"script", "style", "code", "pre", "kbd", "samp", "textarea", "template"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
        "source", "track", "wbr"}
# Single letters (an avatar's initial, "U") say nothing; words do.
WORD = re.compile(r"[A-Za-z][A-Za-z_'’-]*[A-Za-z]")  # a code like cpu_util is one word


class _Reader(HTMLParser):
    """The text a person reads on the page: visible text and read attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        hidden = attributes.get("translate") == "no" or "hidden" in attributes
        if tag in SKIP_ELEMENTS or (hidden and tag not in VOID):
            self.skipping.append(tag)
            return
        if self.skipping:
            if tag == self.skipping[-1] and tag not in VOID:
                self.skipping.append(tag)  # a <span> in a hidden <span>: count the depth
            return
        for name in READ_ATTRIBUTES:
            if attributes.get(name):
                self.parts.append(attributes[name])
        if tag == "input" and attributes.get("type") in ("submit", "button", "reset"):
            self.parts.append(attributes.get("value") or "")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_endtag(self, tag):
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def readable_text(html: str) -> str:
    reader = _Reader()
    reader.feed(html)
    return "\n".join(part for part in reader.parts if part.strip())


def _enum_columns(table) -> set[str]:
    """Columns a CHECK constraint limits to a list of values: statuses, roles, kinds."""
    found = set()
    for constraint in table.constraints:
        if isinstance(constraint, CheckConstraint):
            text = str(constraint.sqltext)
            found.update(re.findall(r"(\w+) IN \(", text))
    return found


# Columns that hold the portal's own sentences (portal/provisioning/messages.py, stored in
# English for the API) as well as drivers' text: of a sentence, only what fills it is data.
WORDED = {("virtual_machine", "status_message"), ("provision_job", "result_message")}


def data_strings() -> set[str]:
    """Every value of every free-text column in the database (not the enum columns)."""
    from portal.provisioning.messages import recognise

    values: set[str] = set()
    for table in db.metadata.sorted_tables:
        enums = _enum_columns(table)
        columns = [c for c in table.columns
                   if isinstance(c.type, (String, Text)) and c.name not in enums
                   and not c.name.endswith(("_hash", "secret", "token"))]
        if not columns:
            continue
        worded = [(table.name, c.name) in WORDED for c in columns]
        for row in db.session.execute(select(*columns)):
            for value, is_worded in zip(row, worded, strict=True):
                if not isinstance(value, str) or not value.strip():
                    continue
                found = recognise(value) if is_worded else None
                values.update(found[1].values() if found else (value,))
    return values


def english_left(html: str, data: Iterable[str] = ()) -> list[str]:
    """English words left on the page once data and the allowed terms are set aside."""
    text = readable_text(html)
    # Longest first, so that "tpe1-r01-s01" goes before "tpe1-r01".
    for value in sorted(set(data), key=len, reverse=True):
        if len(value) >= 2:
            text = text.replace(value, " ")
    text = re.sub(r"https?://\S+|\S+@\S+|\b[0-9a-f]{8,}\b", " ", text)
    return [word for word in WORD.findall(text)
            if len(word) > 1 and word not in ALLOWED and word.strip("'’-") not in ALLOWED]


def _shape(path: str) -> str:
    """/baremetals/17/edit and /baremetals/3/edit are one page shape."""
    return re.sub(r"/\d+", "/N", path)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.links.append(href)


SKIP_LINKS = re.compile(r"format=csv|/logout|/static/|/api/|kubeconfig|\.(?:png|svg|ico)$")


def crawl(client, start: str = "/", limit: int = 400, headers: dict[str, str] | None = None,
          within: tuple[str, ...] = ("/",)) -> Iterator[tuple[str, str]]:
    """Every page reachable from ``start`` by plain links whose path starts with one of
    ``within``, one per page shape (query strings included: a sorted list is a page of
    its own), as (url, html)."""
    seen_shapes: set[str] = set()
    queue = [start]
    while queue and len(seen_shapes) < limit:
        url = queue.pop(0)
        parts = urlsplit(url)
        shape = _shape(parts.path) + ("?" + re.sub(r"=[^&]*", "=", parts.query)
                                      if parts.query else "")
        if shape in seen_shapes:
            continue
        seen_shapes.add(shape)
        response = client.get(url, headers=headers or {})
        if response.status_code != 200 or not response.mimetype == "text/html":
            continue
        html = response.get_data(as_text=True)
        yield url, html
        links = _Links()
        links.feed(html)
        for href in links.links:
            target = urljoin(url, href)
            target_parts = urlsplit(target)
            if target_parts.scheme or target_parts.netloc or href.startswith("#"):
                continue
            if SKIP_LINKS.search(target) or not target_parts.path.startswith(within):
                continue
            queue.append(target_parts.path + (f"?{target_parts.query}"
                                              if target_parts.query else ""))
