# Sourced by .ci/run: a throwaway PostgreSQL server from Debian's package, on loopback,
# for the tests that need one (FORGE_TEST_POSTGRES_URL). Stopped by stop_postgres.

start_postgres() {
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "installing PostgreSQL (Debian package)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  PG_DATA=$(mktemp -d /tmp/forge-pg.XXXXXX)
  chown postgres "$PG_DATA"
  PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  su postgres -s /bin/sh -c "$PG_BIN/initdb -D $PG_DATA/data -A trust -U postgres >/dev/null"
  su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D $PG_DATA/data -l $PG_DATA/log -w start \
    -o '-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1'" >/dev/null
  su postgres -s /bin/sh -c "$PG_BIN/createdb -h 127.0.0.1 -p $PG_PORT -U postgres forge_test"
  export FORGE_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/forge_test"
  echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
}

stop_postgres() {
  if [ -n "${PG_DATA:-}" ] && [ -d "$PG_DATA/data" ]; then
    su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D $PG_DATA/data -m fast -w stop" >/dev/null 2>&1 || true
    rm -rf "$PG_DATA"
  fi
}
