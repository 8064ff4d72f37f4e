# The portal's image: web replicas (the default command), agents, the controller and the
# one-shot migration all run it (compose.yaml). Build: docker build -t resource-portal .
#
# PYTHON_IMAGE may name any Debian-based image with Python >= 3.11 and its venv module
# (a mirror of python:3.12-slim-bookworm, or a site's own base).
ARG PYTHON_IMAGE=python:3.12-slim-bookworm
# The project's extras installed: "deploy" (gunicorn); add "libvirt" for agents with the
# libvirt driver (docker build --build-arg PORTAL_EXTRAS="deploy libvirt"): the binding is
# built against Debian's libvirt-dev (and python3-dev where the base lacks Python.h, as
# a base on Debian's own python3 does), and the image gets libvirt's library and ssh.
ARG PORTAL_EXTRAS=deploy

FROM ${PYTHON_IMAGE} AS build
ARG PORTAL_EXTRAS
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Dependencies first, from pyproject.toml alone: a code change reuses this layer.
COPY pyproject.toml ./
RUN case " ${PORTAL_EXTRAS} " in *" libvirt "*) \
      apt-get update && apt-get install --yes --no-install-recommends gcc libc6-dev pkg-config libvirt-dev \
      && { python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' \
           || apt-get install --yes --no-install-recommends python3-dev; } \
      && rm -rf /var/lib/apt/lists/* ;; \
    esac \
 && python3 -m venv /opt/portal \
 && python3 -c 'import os, tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + [d for extra in os.environ["PORTAL_EXTRAS"].split() for d in p["optional-dependencies"][extra]]))' > requirements.txt \
 && /opt/portal/bin/pip install -r requirements.txt \
 && /opt/portal/bin/pip uninstall --yes --quiet pip setuptools
COPY . .
# The catalogs, compiled now: the running container's source tree is read-only.
RUN /opt/portal/bin/pybabel compile -d portal/translations \
 && test -s portal/translations/zh_Hant_TW/LC_MESSAGES/messages.mo \
 && rm -rf tests bench docs .ci Makefile requirements.txt \
 && find . -name __pycache__ -prune -exec rm -rf {} + \
 && /opt/portal/bin/python -m compileall -q portal migrations wsgi.py

FROM ${PYTHON_IMAGE}
ARG PORTAL_REVISION=unknown
ARG PORTAL_EXTRAS
LABEL org.opencontainers.image.title="Resource Portal" \
      org.opencontainers.image.revision="${PORTAL_REVISION}"
# No root at run time; the files belong to root and are only read. With the libvirt extra:
# the library the binding links, and ssh for qemu+ssh:// hypervisor URIs.
RUN case " ${PORTAL_EXTRAS} " in *" libvirt "*) \
      apt-get update && apt-get install --yes --no-install-recommends libvirt0 openssh-client \
      && rm -rf /var/lib/apt/lists/* ;; \
    esac \
 && groupadd --system --gid 10001 portal \
 && useradd --system --uid 10001 --gid portal --home-dir /nonexistent --shell /usr/sbin/nologin portal
COPY --from=build /opt/portal /opt/portal
COPY --from=build /src /app
WORKDIR /app
ENV PATH=/opt/portal/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FLASK_APP=wsgi \
    PORTAL_ENV=production \
    PORTAL_AGENT=off \
    PORTAL_BIND=0.0.0.0:8000
USER 10001:10001
EXPOSE 8000
# Liveness only: the process answers. Readiness (/readyz: database and schema) is the
# load balancer's question. Agents and the controller serve no HTTP: compose turns this
# check off for them.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python3", "-c", "import os, sys, urllib.request; port = os.environ['PORTAL_BIND'].rpartition(':')[2]; sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/livez', timeout=2).status != 200)"]
CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py", "wsgi:app"]
