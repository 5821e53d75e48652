#!/bin/sh
# The image's entrypoint: a pgpass file for libpq from the database password secret, then the
# command ("$@") as the image's user. Started as root (the default), it can read a secret of mode
# 600 whoever owns it, and drops to uid 10001 before running anything else; started as another
# user (docker run --user, Kubernetes runAsUser), it needs the secret readable by that user.
set -eu
SECRET="${UNDERSPEC_PG_SECRET:-/run/secrets/pg_password}"
PGPASS="$HOME/.pgpass"
if [ -f "$SECRET" ] && [ -r "$SECRET" ]; then
    # hostname:port:database:username:password, with ':' and '\' escaped in the password
    (umask 077 && printf '*:*:*:*:%s\n' "$(sed 's/[\\:]/\\&/g' "$SECRET")" > "$PGPASS")
    [ "$(id -u)" -ne 0 ] || chown underspec:underspec "$PGPASS"
    export PGPASSFILE="$PGPASS"
elif [ -e "$SECRET" ]; then
    echo "entrypoint: cannot read the password secret $SECRET as uid $(id -u)" >&2
    exit 2
fi
if [ "$(id -u)" -eq 0 ]; then
    exec setpriv --reuid=underspec --regid=underspec --init-groups -- "$@"
fi
exec "$@"
