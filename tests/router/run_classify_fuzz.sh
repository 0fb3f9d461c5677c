#!/usr/bin/env bash
# Builds the classifier libFuzzer target with clang++-14 (-fsanitize=fuzzer,address,undefined) from the
# router sources and runs it for a bounded time. Exits non-zero on a crash, sanitizer report, leak or
# timeout; the reproducer is left in WORK_DIR/artifacts/. libpg_query itself is linked uninstrumented.
#
# Usage: tests/router/run_classify_fuzz.sh [WORK_DIR]
#   FUZZ_SECONDS  run time in seconds (default 30); CLANGXX  compiler (default clang++-14)
# The committed seed corpus (tests/router/fuzz_corpus/) is only read; new inputs go to WORK_DIR/corpus/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${1:-$(mktemp -d /tmp/pgs-classify-fuzz.XXXXXX)}
seconds=${FUZZ_SECONDS:-30}
cxx=${CLANGXX:-clang++-14}
mkdir -p "$work/corpus" "$work/artifacts"
bin="$work/classify_fuzz"

# shellcheck source=tests/fuzz/fuzz_build.sh
source "$here/../fuzz/fuzz_build.sh"
sources=("$repo"/router/*.cc "$here/classify_fuzz.cc")
link_args=(/usr/lib/x86_64-linux-gnu/libpg_query.a -lboost_json -lxxhash -lpthread)
if [[ ! -x "$bin" ]] || [[ -n $(find "$repo/router" "$here/classify_fuzz.cc" -newer "$bin" -print -quit) ]]; then
  echo "run_classify_fuzz: building $bin with $cxx"
  CXX=$cxx fuzz_build "$bin" "$repo" sources link_args
fi

echo "run_classify_fuzz: fuzzing for ${seconds}s (work dir $work)"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
  -artifact_prefix="$work/artifacts/" -print_final_stats=1 \
  "$work/corpus" "$here/fuzz_corpus"
