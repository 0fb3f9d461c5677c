# shellcheck shell=bash
# Debian packages the project needs; installs only what is missing. Sourced by ./dev.

DEV_PACKAGES=(
  cmake ninja-build g++ pkg-config
  libuv1-dev liburing-dev libpq-dev libhiredis-dev libxxhash-dev libtomlplusplus-dev
  libboost1.81-dev libboost-json1.81-dev libgtest-dev libgmock-dev libpg-query-dev libssl-dev
  libbenchmark-dev
  postgresql-15 postgresql-client-15 redis-server pgbouncer prometheus
  python3-psycopg python3-psycopg2 python3-prometheus-client
  clang-14 libclang-rt-14-dev
  wrk curl jq iproute2
)

pkg_installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

# missing_packages: prints the packages of DEV_PACKAGES (plus contrib and node) not installed.
missing_packages() {
  local pkg
  for pkg in "${DEV_PACKAGES[@]}"; do
    pkg_installed "$pkg" || echo "$pkg"
  done
  # pg_stat_statements ships in postgresql-15 on Debian 12; postgresql-contrib is the meta package.
  if [[ ! -f /usr/lib/postgresql/15/lib/pg_stat_statements.so ]] && ! pkg_installed postgresql-contrib; then
    echo postgresql-contrib
  fi
  # Node.js may come from elsewhere (nodesource bundles npm); only install when either is unusable.
  if ! { node --version && npm --version; } >/dev/null 2>&1; then
    pkg_installed nodejs || echo nodejs
    pkg_installed npm || echo npm
  fi
}

ensure_packages() {
  local missing
  mapfile -t missing < <(missing_packages)
  if ((${#missing[@]} == 0)); then
    log "all Debian packages present"
    return 0
  fi
  command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get to install them"
  log "installing missing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >"$LOG_DIR/apt.log" 2>&1 || die "apt-get update failed; see $LOG_DIR/apt.log"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$LOG_DIR/apt.log" 2>&1 ||
    die "apt-get install failed; see $LOG_DIR/apt.log"
  # The Debian postgresql package may start its own cluster on :5432; ours do not need it, leave it.
}
