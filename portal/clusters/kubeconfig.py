"""A cluster's kubeconfig (SPEC 8.6): returned by the agent when a control-plane node is
built, stored encrypted at rest, handed to the tenant's admins and operators — never to
maintainers — and every download audited.

Encryption: Fernet (AES-128-CBC + HMAC-SHA256) with a key derived by HKDF-SHA256 from
``PORTAL_ENCRYPTION_KEY`` when it is set, otherwise from ``SECRET_KEY``. A separate key lets
an operator rotate the session key without losing the stored kubeconfigs.
"""

from __future__ import annotations

import base64
import os

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Response, current_app
from sqlalchemy import select

from portal.audit.service import record
from portal.auth.access import administered_tenant_ids
from portal.extensions import db
from portal.i18n import _
from portal.models import ClusterKubeconfig, K8sCluster, User, utcnow

MAX_BYTES = 64 * 1024
HKDF_INFO = b"resource-portal kubeconfig v1"


class KubeconfigError(ValueError):
    """A kubeconfig that cannot be stored or read; the message says why."""


def _fernet() -> Fernet:
    secret = (current_app.config.get("PORTAL_ENCRYPTION_KEY")
              or os.environ.get("PORTAL_ENCRYPTION_KEY")
              or current_app.config["SECRET_KEY"])
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(
        secret.encode() if isinstance(secret, str) else secret)
    return Fernet(base64.urlsafe_b64encode(key))


def check(text: str) -> None:
    """Refuse what is not worth storing, before anything changes."""
    if not text.strip():
        raise KubeconfigError(_("The kubeconfig is empty."))
    if len(text.encode()) > MAX_BYTES:
        raise KubeconfigError(_("The kubeconfig is %(size)s bytes; at most %(limit)s are kept.",
                                size=len(text.encode()), limit=MAX_BYTES))


def store(cluster_id: int, text: str) -> None:
    """Keep (or replace) the cluster's kubeconfig, encrypted, in the caller's transaction."""
    check(text)
    ciphertext = _fernet().encrypt(text.encode())
    row = db.session.scalar(
        select(ClusterKubeconfig).where(ClusterKubeconfig.cluster_id == cluster_id))
    if row is None:
        db.session.add(ClusterKubeconfig(cluster_id=cluster_id, ciphertext=ciphertext))
    else:
        row.ciphertext, row.updated_at = ciphertext, utcnow()


def exists(cluster_id: int) -> bool:
    return db.session.scalar(
        select(ClusterKubeconfig.id).where(ClusterKubeconfig.cluster_id == cluster_id)
    ) is not None


def may_download(cluster: K8sCluster, user: User) -> bool:
    """Operators and the admins of the cluster's tenant (not maintainers: a kubeconfig is
    the cluster's keys, more than a status to set)."""
    allowed = administered_tenant_ids(user)  # None: an operator, every tenant
    return allowed is None or cluster.tenant_id in allowed


def download(cluster: K8sCluster, user: User) -> str | None:
    """The plaintext for ``user`` (who may download it: the caller checked), audited and
    committed; None when the agent has not returned one yet."""
    row = db.session.scalar(
        select(ClusterKubeconfig).where(ClusterKubeconfig.cluster_id == cluster.id))
    if row is None:
        return None
    try:
        text = _fernet().decrypt(row.ciphertext).decode()
    except InvalidToken:
        raise KubeconfigError(_(
            "The kubeconfig of cluster %(name)s cannot be decrypted: was "
            "PORTAL_ENCRYPTION_KEY (or SECRET_KEY) changed since it was stored?",
            name=cluster.name)) from None
    record("download", "k8s_cluster", cluster.id, cluster.name,
           {"kubeconfig": {"from": None, "to": "downloaded"}}, user=user)
    db.session.commit()
    return text


def attachment(cluster: K8sCluster, text: str) -> Response:
    """The download, as the page and the API answer it: a file, never cached."""
    return Response(text, mimetype="application/yaml", headers={
        "Content-Disposition": f'attachment; filename="{cluster.name}-kubeconfig.yaml"',
        "Cache-Control": "no-store",
    })
