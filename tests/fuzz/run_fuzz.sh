#!/usr/bin/env bash
# Builds the protocol libFuzzer target with clang++-14 (-fsanitize=fuzzer,address,undefined) from
# the protocol sources and runs it for a bounded time. Exits non-zero if the fuzzer finds a crash,
# a sanitizer report, a leak or a timeout; the reproducer is left in WORK_DIR/artifacts/.
#
# Usage: tests/fuzz/run_fuzz.sh [WORK_DIR]
#   WORK_DIR      build and scratch directory (default: a new temporary directory)
#   FUZZ_SECONDS  run time in seconds (default 30)
#   CLANGXX       compiler (default clang++-14)
# The committed seed corpus (tests/fuzz/corpus/) is only read; new inputs go to WORK_DIR/corpus/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${1:-$(mktemp -d /tmp/pgs-fuzz.XXXXXX)}
seconds=${FUZZ_SECONDS:-30}
cxx=${CLANGXX:-clang++-14}
mkdir -p "$work/corpus" "$work/artifacts"
bin="$work/protocol_fuzz"

# shellcheck source=tests/fuzz/fuzz_build.sh
source "$here/fuzz_build.sh"
sources=("$repo"/protocol/*.cc "$here/protocol_fuzz.cc")
link_args=(-lcrypto)
# Rebuild only when a source or header is newer than the binary.
if [[ ! -x "$bin" ]] || [[ -n $(find "$repo/protocol" "$here/protocol_fuzz.cc" -newer "$bin" -print -quit) ]]; then
  echo "run_fuzz: building $bin with $cxx"
  CXX=$cxx fuzz_build "$bin" "$repo" sources link_args
fi

echo "run_fuzz: fuzzing for ${seconds}s (work dir $work)"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
  -artifact_prefix="$work/artifacts/" -print_final_stats=1 \
  "$work/corpus" "$here/corpus"
