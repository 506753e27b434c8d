# Sourced by scripts/run and scripts/test: find or start PostgreSQL and Redis.
#
# Uses a server that answers on the usual port when there is one; otherwise
# starts one from the installed packages in .local/ (a project-local data
# directory, on a port of its own); otherwise, when running as root,
# installs the Debian packages first. Exports PG_SERVER_URL (a URL to the
# `postgres` database of the server) and REDIS_URL.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL="$ROOT/.local"
LOCAL_PG_PORT=${LOCAL_PG_PORT:-55432}
LOCAL_REDIS_PORT=${LOCAL_REDIS_PORT:-56379}

mkdir -p "$LOCAL"

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

apt_install() {
  [ "$(id -u)" = 0 ] || die "$1 is not installed; install the Debian package(s) ${*:2}, or run as root to have this script do it"
  command -v apt-get >/dev/null || die "$1 is not installed and there is no apt-get to install it"
  say "installing ${*:2} from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${@:2}" >&2
}

pg_bin() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r) /usr/local/bin /usr/bin; do
    [ -x "$dir/$1" ] && { echo "$dir/$1"; return 0; }
  done
  command -v "$1"
}

# Runs a PostgreSQL server program, which refuses to run as root.
as_pg_user() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

ensure_postgres() {
  if [ -n "${PG_SERVER_URL:-}" ]; then
    say "PostgreSQL: using PG_SERVER_URL"
    return
  fi
  local port=${PGPORT:-5432}
  if port_open 127.0.0.1 "$port"; then
    PG_SERVER_URL="postgres://${PGUSER:-postgres}@127.0.0.1:$port/postgres"
    say "PostgreSQL: using the server on 127.0.0.1:$port"
  else
    [ -n "$(pg_bin initdb)" ] || apt_install PostgreSQL postgresql postgresql-client
    local initdb pg_ctl data="$LOCAL/postgres"
    initdb=$(pg_bin initdb || true) pg_ctl=$(pg_bin pg_ctl || true)
    [ -n "$initdb" ] && [ -n "$pg_ctl" ] || die "no initdb/pg_ctl found after installing PostgreSQL"
    mkdir -p "$data"
    if [ "$(id -u)" = 0 ]; then
      # The server runs as postgres, which may not enter the project (say,
      # under a 0700 home): then its data lives under /var/tmp instead.
      if ! runuser -u postgres -- test -x "$LOCAL"; then
        data="/var/tmp/message-dispatcher-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)/postgres"
        mkdir -p "$data"
      fi
      chown -R postgres "$data"
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
      say "PostgreSQL: creating a local cluster in $data"
      as_pg_user "$initdb" -D "$data" -U postgres --auth=trust >"$LOCAL/postgres-init.log" 2>&1 \
        || die "initdb failed; see $LOCAL/postgres-init.log"
    fi
    if ! port_open 127.0.0.1 "$LOCAL_PG_PORT"; then
      say "PostgreSQL: starting the project-local server on 127.0.0.1:$LOCAL_PG_PORT"
      as_pg_user "$pg_ctl" -D "$data" -l "$data/server.log" -w \
        -o "-p $LOCAL_PG_PORT -k $data -c listen_addresses=127.0.0.1" start >/dev/null \
        || die "PostgreSQL did not start; see $data/server.log"
    fi
    PG_SERVER_URL="postgres://postgres@127.0.0.1:$LOCAL_PG_PORT/postgres"
  fi
  export PG_SERVER_URL
}

ensure_redis() {
  if [ -n "${REDIS_URL:-}" ]; then
    say "Redis: using REDIS_URL"
  elif port_open 127.0.0.1 "${REDIS_PORT:-6379}"; then
    REDIS_URL="redis://127.0.0.1:${REDIS_PORT:-6379}"
    say "Redis: using the server on 127.0.0.1:${REDIS_PORT:-6379}"
  else
    command -v redis-server >/dev/null || apt_install Redis redis-server
    if ! port_open 127.0.0.1 "$LOCAL_REDIS_PORT"; then
      say "Redis: starting a project-local server on 127.0.0.1:$LOCAL_REDIS_PORT"
      mkdir -p "$LOCAL/redis"
      redis-server --bind 127.0.0.1 --port "$LOCAL_REDIS_PORT" --daemonize yes --save "" \
        --appendonly no --dir "$LOCAL/redis" --logfile "$LOCAL/redis/server.log" \
        --pidfile "$LOCAL/redis/server.pid" >/dev/null || die "Redis did not start"
      local tries=50
      until port_open 127.0.0.1 "$LOCAL_REDIS_PORT"; do
        tries=$((tries - 1)); [ "$tries" -gt 0 ] || die "Redis did not start; see .local/redis/server.log"
        sleep 0.1
      done
    fi
    REDIS_URL="redis://127.0.0.1:$LOCAL_REDIS_PORT"
  fi
  export REDIS_URL
}

# psql, which the scripts use to create, seed and drop databases.
ensure_psql() {
  command -v psql >/dev/null || apt_install "psql" postgresql-client
}

# psql against the server, with a database name.
pg_psql() {
  local db=$1; shift
  psql "${PG_SERVER_URL%/*}/$db" -v ON_ERROR_STOP=1 -qAt "$@"
}

# cargo-deny, from crates.io, the first time (a few minutes of building).
ensure_cargo_deny() {
  cargo deny --version >/dev/null 2>&1 && return
  say "installing cargo-deny from crates.io (once)"
  cargo install --locked --quiet cargo-deny >&2
}

ensure_rust() {
  command -v cargo >/dev/null || die "cargo is not installed: install Rust from https://rustup.rs"
  if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    command -v rustup >/dev/null || die "cargo fmt and cargo clippy are needed: install the rustfmt and clippy components"
    say "installing the rustfmt and clippy components"
    rustup component add rustfmt clippy >&2
  fi
}

# A Python with the Standard Webhooks library (pinned), in .local/venv, for
# the webhook receiver of the tests; exported as WEBHOOK_VERIFIER_PYTHON.
ensure_webhook_verifier() {
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt_install Python python3 python3-venv
  fi
  local venv="$LOCAL/venv" pinned
  pinned=$(sed -n 's/^standardwebhooks==//p' "$ROOT/scripts/requirements-webhook-check.txt")
  if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('standardwebhooks') != '$pinned')" 2>/dev/null; then
    say "installing standardwebhooks into .local/venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r "$ROOT/scripts/requirements-webhook-check.txt"
  fi
  export WEBHOOK_VERIFIER_PYTHON="$venv/bin/python"
}

# Prometheus and promtool (Debian's package prometheus), for the metrics
# tests: the ones on PATH, else the package's binaries unpacked into
# .local/prometheus (apt-get download and dpkg-deb: nothing is installed
# system-wide, no service is started). Exports PROMETHEUS and PROMTOOL;
# returns 1 when they cannot be had.
ensure_prometheus() {
  local dir="$LOCAL/prometheus/usr/bin"
  if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    dir=$(dirname "$(command -v promtool)")
  elif [ ! -x "$dir/promtool" ] || [ ! -x "$dir/prometheus" ]; then
    command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || return 1
    say "unpacking Debian's prometheus package into .local/prometheus"
    local download
    download=$(mktemp -d)
    if ! (cd "$download" && apt-get download -qq prometheus >&2 2>/dev/null); then
      [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
      (cd "$download" && apt-get download -qq prometheus >&2 2>/dev/null) || { rm -rf "$download"; return 1; }
    fi
    dpkg-deb -x "$download"/prometheus_*.deb "$LOCAL/prometheus" || { rm -rf "$download"; return 1; }
    rm -rf "$download"
  fi
  export PROMETHEUS="$dir/prometheus" PROMTOOL="$dir/promtool"
}

# hadolint, check-jsonschema and kubernetes-validate (pinned, from PyPI) in
# .local/lint-venv; exports LINT_BIN, the folder of their commands. Returns 1
# when they cannot be installed.
ensure_lint_tools() {
  local venv="$LOCAL/lint-venv" requirements="$ROOT/scripts/requirements-lint.txt"
  if ! cmp -s "$requirements" "$venv/requirements.txt" 2>/dev/null; then
    say "installing hadolint, check-jsonschema and kubernetes-validate into .local/lint-venv"
    python3 -m venv "$venv" >&2 || return 1
    "$venv/bin/pip" install -q -r "$requirements" >&2 || return 1
    cp "$requirements" "$venv/requirements.txt"
  fi
  export LINT_BIN="$venv/bin"
}

# systemd-analyze (Debian's package systemd), for the unit file's check:
# installed when missing and this runs as root; returns 1 otherwise.
ensure_systemd_analyze() {
  command -v systemd-analyze >/dev/null && return 0
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
  say "installing systemd from Debian's packages (for systemd-analyze)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >&2
}
