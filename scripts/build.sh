# shellcheck shell=bash
# Configure and build into build/ (Ninja, RelWithDebInfo). Sourced by ./dev.

# PGS_NO_BUILD=1 skips it (use the binaries already in build/). Returns 1 when some target failed.
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
  log "building in $BUILD_DIR with -j$jobs (log $LOG_DIR/build.log)"
  # -k 0: build every target that can be built, so one module's broken file still leaves the others'
  # tests runnable (ctest reports the unbuilt ones as *_NOT_BUILT).
  if ! cmake --build "$BUILD_DIR" -j"$jobs" -- -k 0 2>&1 | tee "$LOG_DIR/build.log"; then
    warn "build failed; failed steps:"
    grep -E '^FAILED: ' "$LOG_DIR/build.log" | cut -c1-200 >&2 || true
    return 1
  fi
}
