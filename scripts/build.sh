# shellcheck shell=bash
# Configure and build into build/ (Ninja, RelWithDebInfo). Sourced by ./dev.

# PGS_NO_BUILD=1 skips it (use the binaries already in build/).
build_all() {
  if [[ "${PGS_NO_BUILD:-0}" == 1 ]]; then
    log "PGS_NO_BUILD=1: not building"
    return 0
  fi
  local jobs="${PGS_BUILD_JOBS:-$(nproc)}"
  # Always re-run the configure step (a few seconds): the top-level CMakeLists.txt adds module folders
  # only if they hold a CMakeLists.txt at configure time, and Ninja cannot notice a new one appearing.
  log "configuring $BUILD_DIR (Ninja, RelWithDebInfo; log $LOG_DIR/cmake-configure.log)"
  cmake -S "$PGS_ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    >"$LOG_DIR/cmake-configure.log" 2>&1 || {
    tail -n 40 "$LOG_DIR/cmake-configure.log" >&2
    die "cmake configure failed; see $LOG_DIR/cmake-configure.log"
  }
  log "building in $BUILD_DIR with -j$jobs"
  if ! cmake --build "$BUILD_DIR" -j"$jobs" 2>&1 | tee "$LOG_DIR/build.log"; then
    die "build failed; see $LOG_DIR/build.log"
  fi
}
