#!/bin/sh
# The user list from the environment (never baked into the image), then PgBouncer.
set -eu
: "${PGBOUNCER_PASSWORD:?set PGBOUNCER_PASSWORD (the portal role's password)}"
user="${PGBOUNCER_USER:-portal}"
quote() { printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')"; }
umask 077
mkdir -p /run/pgbouncer
printf '%s %s\n' "$(quote "$user")" "$(quote "$PGBOUNCER_PASSWORD")" > /run/pgbouncer/userlist.txt
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
