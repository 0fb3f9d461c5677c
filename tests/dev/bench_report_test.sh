#!/usr/bin/env bash
# bench/report.awk on a results.tsv written here (no benchmark runs): the per-target medians of TPS, proxy
# CPU, machine CPU and Postgres CPU per transaction, and the ratio lines, including the machine's (the
# whole machine's busy CPU per transaction, column 10) and Postgres's (column 11). A row without column 10
# or 11 (an older results.tsv) reads as "-" there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tsv="$(mktemp)"
trap 'rm -f "$tsv"' EXIT
printf '%s\n' \
  $'w\t1\t1\tpgsidecar\t100\t1000\t5\t30.00\tok\t140.00\t90.00' \
  $'w\t1\t2\tpgbouncer\t110\t1100\t4\t24.00\tok\t120.00\t80.00' \
  $'w\t1\t3\tdirect\t120\t1200\t0\t-\tok\t100.00' \
  $'w\t2\t1\tpgbouncer\t110\t1100\t4\t22.00\tok\t110.00\t70.00' \
  $'w\t2\t2\tpgsidecar\t100\t1000\t5\t31.00\tok\t121.00\t84.00' \
  $'w\t2\t3\tdirect\t120\t1200\t0\t-\tok' >"$tsv"
out="$(awk -F'\t' -f "$root/bench/report.awk" "$tsv")"
fail=0
expect() {
  if ! grep -qE -- "$1" <<<"$out"; then
    echo "FAIL: no line matching: $1"
    fail=1
  fi
}
expect '^  pgsidecar +100\.0 +30\.50 +130\.50 +87\.00$'   # medians: tps, cpu, machine, postgres
expect '^  pgbouncer +110\.0 +23\.00 +115\.00 +75\.00$'
expect '^  direct +120\.0 +- +100\.00 +-$'           # one machine figure: round 2 had none
expect '^  direct +120\.0 +1200 +- +100\.00 +- $'     # the row without column 11
expect '^  direct +120\.0 +1200 +- +- +- $'          # the row without columns 10 and 11
expect '^machine us/txn ratios'
expect '^  pgsidecar/pgbouncer +1\.133 +\(per round: 1\.167 1\.100\)$'
expect '^  pgsidecar/direct +1\.400 +\(per round: 1\.400\)$'
expect '^  pgsidecar/pgbouncer +1\.330 +\(per round: 1\.250 1\.409\)$'  # proxy CPU
expect '^postgres us/txn ratios'
expect '^  pgsidecar/pgbouncer +1\.163 +\(per round: 1\.125 1\.200\)$'  # Postgres CPU
if [[ "$(grep -c '^  pgbouncer/direct ' <<<"$out")" != 2 ]]; then  # throughput and machine: direct has no Postgres figure
  echo "FAIL: pgbouncer/direct ratio lines are not exactly the throughput's and the machine's"
  fail=1
fi
if ((fail)); then
  printf '%s\n' "$out"
  exit 1
fi

# bench/threads.awk on a threads.tsv written here: per workload and pgsidecar target, each thread's median
# µs per transaction over the rounds (three rounds, and two for a thread seen in two), idle threads left out.
printf '%s\n' \
  $'w\t1\tpgsidecar\tpgs-worker-0\t20.00' \
  $'w\t1\tpgsidecar\tpgs-health\t1.50' \
  $'w\t1\tpgsidecar\tpgs-http\t0.00' \
  $'w\t1\tpgsidecar-plain\tpgs-worker-0\t18.00' \
  $'w\t2\tpgsidecar\tpgs-worker-0\t24.00' \
  $'w\t2\tpgsidecar\tpgs-health\t2.50' \
  $'w\t2\tpgsidecar\tpgs-http\t0.00' \
  $'w\t2\tpgsidecar-plain\tpgs-worker-0\t19.00' \
  $'w\t3\tpgsidecar\tpgs-worker-0\t21.00' \
  $'w\t3\tpgsidecar\tpgs-http\t0.00' \
  $'w\t3\tpgsidecar-plain\tpgs-worker-0\t30.00' >"$tsv"
out="$(awk -F'\t' -f "$root/bench/threads.awk" "$tsv")"
expect '^  w, pgsidecar$'
expect '^    pgs-worker-0 +21\.00   \(per round: 20\.00 24\.00 21\.00\)$'
expect '^    pgs-health +2\.00   \(per round: 1\.50 2\.50\)$'
expect '^  w, pgsidecar-plain$'
expect '^    pgs-worker-0 +19\.00   \(per round: 18\.00 19\.00 30\.00\)$'
if grep -q 'pgs-http' <<<"$out"; then
  echo "FAIL: an idle thread is listed"
  fail=1
fi
if ((fail)); then
  printf '%s\n' "$out"
  exit 1
fi
echo "bench report: ok"
