# Summary of bench/app/run.sh's results.tsv (tab-separated: target, connections, round, requests,
# req/s, p50 ms, p95 ms, p99 ms, socket errors, non-2xx). Prints, per connections and target, the
# medians over rounds, the summed errors, and pgsidecar's req/s relative to direct.

function median(key, field,    n, i, j, v, tmp) {
  n = count[key]
  for (i = 1; i <= n; i++) v[i] = val[key, i, field]
  for (i = 2; i <= n; i++) {
    tmp = v[i]
    for (j = i - 1; j >= 1 && v[j] > tmp; j--) v[j + 1] = v[j]
    v[j + 1] = tmp
  }
  return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}

{
  key = $2 SUBSEP $1
  if (!(key in count)) {
    order[++keys] = key
    if (!($2 in seen)) { seen[$2] = 1; conns[++nconns] = $2 }
  }
  n = ++count[key]
  for (f = 4; f <= 8; f++) val[key, n, f] = $f + 0
  errors[key] += $9 + $10
}

END {
  printf "%-6s %-10s %10s %9s %9s %9s %8s %9s\n", "conns", "target", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "vs direct"
  for (c = 1; c <= nconns; c++) {
    for (k = 1; k <= keys; k++) {
      split(order[k], parts, SUBSEP)
      if (parts[1] != conns[c]) continue
      rps = median(order[k], 5)
      direct = conns[c] SUBSEP "direct"
      rel = (direct in count && parts[2] != "direct") ? sprintf("%.2fx", rps / median(direct, 5)) : "-"
      printf "%-6s %-10s %10.0f %9.2f %9.2f %9.2f %8d %9s\n", parts[1], parts[2], rps, median(order[k], 6),
        median(order[k], 7), median(order[k], 8), errors[order[k]], rel
    }
  }
}
