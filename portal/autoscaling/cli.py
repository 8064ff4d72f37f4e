"""`flask --app wsgi autoscaler serve-grpc`: cluster-autoscaler's externalgrpc provider for
one cluster's worker pool."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from portal.extensions import db
from portal.models import K8sCluster

autoscaler_cli = AppGroup("autoscaler", help="Autoscaling: cluster-autoscaler's provider.")


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


@autoscaler_cli.command("serve-grpc")
@click.option("--cluster", "cluster_id", type=click.IntRange(min=1), required=True,
              help="The cluster whose worker pool this server offers (one server per "
                   "cluster: a cluster-autoscaler never sees another tenant's nodes).")
@click.option("--bind", default="127.0.0.1:8086", show_default=True,
              help="host:port to listen on.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False),
              help="Server certificate (PEM): speak TLS.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False),
              help="The certificate's private key (PEM).")
@click.option("--tls-client-ca", type=click.Path(exists=True, dir_okay=False),
              help="CA (PEM) that signed the clients' certificates: require one (mTLS).")
def serve_grpc(cluster_id, bind, tls_cert, tls_key, tls_client_ca):
    """Serve cluster-autoscaler's externalgrpc cloud-provider protocol. Point the
    autoscaler's --cloud-config at a file with `address: HOST:PORT` (and `cert`, `key`,
    `cacert` for mTLS)."""
    from portal.autoscaling.provider import build_server, node_group_id

    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together.")
    if tls_client_ca and not tls_cert:
        raise click.UsageError("--tls-client-ca needs --tls-cert and --tls-key.")
    cluster = db.session.get(K8sCluster, cluster_id)
    if cluster is None:
        raise click.UsageError(f"No cluster {cluster_id}.")
    name = cluster.name
    db.session.remove()
    server, port = build_server(current_app._get_current_object(), cluster_id, bind,
                                tls_cert=_read(tls_cert), tls_key=_read(tls_key),
                                client_ca=_read(tls_client_ca))
    server.start()
    security = "mTLS" if tls_client_ca else "TLS" if tls_cert else "plaintext"
    host = bind.rpartition(":")[0]
    click.echo(f"externalgrpc provider for cluster {name} (node group "
               f"{node_group_id(cluster_id)}) on {host}:{port} ({security}).", err=True)
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    # Never an unbounded wait: the kernel may hand the signal to one of gRPC's threads, and
    # Python runs its handler only once the main thread wakes up.
    while not stopped.wait(0.5):
        pass
    server.stop(grace=5).wait()
