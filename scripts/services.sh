#!/usr/bin/env bash
# Makes sure the services the tests talk to are up. `scripts/services.sh postgres` starts the
# machine's PostgreSQL cluster if it is not answering on 127.0.0.1:5432 and waits for it.
set -euo pipefail

postgres() {
    if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
    echo "services: starting PostgreSQL" >&2
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    [ -n "$version" ] || { echo "services: no PostgreSQL cluster under /etc/postgresql" >&2; return 1; }
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 1 60); do
        pg_isready -q -h 127.0.0.1 -p 5432 && return 0
        sleep 0.5
    done
    echo "services: PostgreSQL did not come up on 127.0.0.1:5432" >&2
    return 1
}

for service in "$@"; do "$service"; done
