# Summarise bench/threads.tsv (columns: workload round target thread us_per_txn): for each pgsidecar
# target of each workload, every thread that spent CPU, as the median over rounds of its µs per
# transaction, then the rounds' own figures. Threads are named by the proxy (pgs-worker-N the event
# loops, pgs-inval-strm the invalidation stream's leader, pgs-health the replica probe, ...); their sum
# is the target's "cpu us/txn" above.
# Usage: awk -F'\t' -f threads.awk threads.tsv

function median(list,    n, a, i, j, t) {
  n = split(list, a, " ")
  for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}

{
  if (!(($1, $3) in seen)) { seen[$1, $3] = 1; order[++n] = $1 SUBSEP $3 }
  if (!(($1, $3, $4) in listed)) { listed[$1, $3, $4] = 1; names[$1, $3] = names[$1, $3] " " $4 }
  v = (($1, $3, $4) in values) ? values[$1, $3, $4] " " $5 : $5  # apart: an assignment creates the element first
  values[$1, $3, $4] = v
}

END {
  for (i = 1; i <= n; i++) {
    split(order[i], wt, SUBSEP)
    printf "  %s, %s\n", wt[1], wt[2]
    k = split(substr(names[wt[1], wt[2]], 2), thread, " ")
    for (j = 1; j <= k; j++) {
      m = median(values[wt[1], wt[2], thread[j]])
      if (m + 0 < 0.005) continue  # idle threads (the slow-query log, /metrics, ...) are left out
      printf "    %-16s %10.2f   (per round: %s)\n", thread[j], m, values[wt[1], wt[2], thread[j]]
    }
  }
}
