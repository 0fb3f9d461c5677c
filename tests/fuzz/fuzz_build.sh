# fuzz_build BIN REPO SOURCES LINK_ARGS: builds a libFuzzer target with $CXX (clang++-14,
# -fsanitize=fuzzer,address,undefined) into BIN, one compiler per core: the fuzz tests run alone under
# ctest, and a serial build of their sources was most of their time. SOURCES and LINK_ARGS name bash
# arrays; objects go to BIN.objs/. Returns non-zero when a compile or the link failed.
# Sourced by tests/fuzz/run_fuzz.sh and tests/router/run_classify_fuzz.sh.
fuzz_build() {
  local bin=$1 repo=$2
  local -n fuzz_sources=$3 fuzz_link_args=$4
  local objs="$bin.objs" jobs failed=0 n=0 src pid
  jobs=$(nproc)
  local -a flags=(-std=c++20 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
                  -fno-sanitize-recover=all) running=() objects=()
  rm -rf "$objs"
  mkdir -p "$objs"
  for src in "${fuzz_sources[@]}"; do
    objects+=("$objs/$((n++))-$(basename "$src" .cc).o")
    "$CXX" "${flags[@]}" -I"$repo" -c "$src" -o "${objects[-1]}" &
    running+=("$!")
    if ((${#running[@]} >= jobs)); then
      wait "${running[0]}" || failed=1
      running=("${running[@]:1}")
    fi
  done
  for pid in "${running[@]}"; do wait "$pid" || failed=1; done
  ((failed == 0)) || return 1
  "$CXX" "${flags[@]}" "${objects[@]}" "${fuzz_link_args[@]}" -o "$bin.tmp" && mv "$bin.tmp" "$bin"
}
