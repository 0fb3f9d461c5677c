# Summarise bench/results.tsv (columns: workload round position target tps transactions cpu_ticks
# cpu_us_per_txn status machine_us_per_txn postgres_us_per_txn): a table per round, medians per target,
# and medians of the per-round ratios (DESIGN.md: with 2 cores compare medians of ratios, never single
# runs). "machine" is the whole machine's busy CPU per transaction (proxy, Postgres, pgbench,
# interrupts): what a proxy really costs, its own CPU and what it makes the others spend. "postgres" is
# the part of it the Postgres clusters spent: on a saturated machine the TPS ratios follow it. A row
# without the last column(s) (an older results.tsv) reads as "-" there.
# Usage: awk -F'\t' -f report.awk results.tsv

function median(list,    n, a, i, j, t) {
  n = split(list, a, " ")
  if (n == 0) return ""
  for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}

function add(key, value) { lists[key] = (key in lists) ? lists[key] " " value : value }

{
  w = $1; r = $2; t = $4
  if (!(w in seen_w)) { seen_w[w] = 1; workloads[++nw] = w }
  if (!((w, t) in seen_t)) { seen_t[w, t] = 1; targets[w, ++nt[w]] = t }
  if (!((w, r) in seen_r)) { seen_r[w, r] = 1; rounds[w, ++nr[w]] = r }
  m = ($10 == "" ? "-" : $10)
  pg = ($11 == "" ? "-" : $11)
  row[w, r, $3] = sprintf("  %-16s %12.1f %12d %14s %14s %14s %s", t, $5, $6, $8, m, pg, ($9 == "ok" ? "" : "FAILED"))
  npos[w, r] = ($3 > npos[w, r]) ? $3 : npos[w, r]
  ok[w, r, t] = ($9 == "ok")
  tps[w, r, t] = $5
  cpu[w, r, t] = $8
  machine[w, r, t] = m
  postgres[w, r, t] = pg
  if ($9 == "ok") {
    add(w SUBSEP t SUBSEP "tps", $5)
    if ($8 != "-") add(w SUBSEP t SUBSEP "cpu", $8)
    if (m != "-") add(w SUBSEP t SUBSEP "machine", m)
    if (pg != "-") add(w SUBSEP t SUBSEP "postgres", pg)
  }
  if ($9 != "ok") failures++
}

function ratio_line(w, a, b,    i, r, list) {
  if (!((w, a) in seen_t) || !((w, b) in seen_t)) return
  list = ""
  for (i = 1; i <= nr[w]; i++) {
    r = rounds[w, i]
    if (ok[w, r, a] && ok[w, r, b] && tps[w, r, b] > 0) list = list " " tps[w, r, a] / tps[w, r, b]
  }
  if (list != "") printf "  %-30s %6.3f   (per round:%s)\n", a "/" b, median(list), fmt(list)
}

# CPU per transaction of proxy a over proxy b (`of`: the cpu, machine or postgres table): the median of
# per-round ratios (lower is better).
function cpu_ratio_line(w, a, b, of,    i, r, list, x, y) {
  if (!((w, a) in seen_t) || !((w, b) in seen_t)) return
  list = ""
  for (i = 1; i <= nr[w]; i++) {
    r = rounds[w, i]
    x = (of == "machine") ? machine[w, r, a] : (of == "postgres") ? postgres[w, r, a] : cpu[w, r, a]
    y = (of == "machine") ? machine[w, r, b] : (of == "postgres") ? postgres[w, r, b] : cpu[w, r, b]
    if (ok[w, r, a] && ok[w, r, b] && x != "-" && y != "-" && y > 0) list = list " " x / y
  }
  if (list != "") printf "  %-30s %6.3f   (per round:%s)\n", a "/" b, median(list), fmt(list)
}

function fmt(list,    n, a, i, s) { n = split(list, a, " "); s = ""; for (i = 1; i <= n; i++) s = s sprintf(" %.3f", a[i]); return s }

END {
  for (k = 1; k <= nw; k++) {
    w = workloads[k]
    printf "\n== workload %s ==\n", w
    for (i = 1; i <= nr[w]; i++) {
      r = rounds[w, i]
      printf "round %s\n  %-16s %12s %12s %14s %14s %14s\n", r, "target", "tps", "transactions", "cpu us/txn", "machine us/txn",
        "postgres us/txn"
      for (p = 1; p <= npos[w, r]; p++) if ((w, r, p) in row) print row[w, r, p]
    }
    printf "medians over %d rounds\n  %-16s %12s %14s %14s %14s\n", nr[w], "target", "tps", "cpu us/txn", "machine us/txn",
      "postgres us/txn"
    for (i = 1; i <= nt[w]; i++) {
      t = targets[w, i]
      c = median(lists[w, t, "cpu"])
      m = median(lists[w, t, "machine"])
      pg = median(lists[w, t, "postgres"])
      printf "  %-16s %12.1f %14s %14s %14s\n", t, median(lists[w, t, "tps"]), (c == "" ? "-" : sprintf("%.2f", c)),
        (m == "" ? "-" : sprintf("%.2f", m)), (pg == "" ? "-" : sprintf("%.2f", pg))
    }
    printf "throughput ratios (median of per-round ratios)\n"
    ratio_line(w, "pgsidecar", "direct")
    ratio_line(w, "pgbouncer", "direct")
    ratio_line(w, "pgsidecar", "pgbouncer")
    ratio_line(w, "pgsidecar", "replica")
    ratio_line(w, "pgsidecar-plain", "pgbouncer")
    printf "cpu us/txn ratios (median of per-round ratios; below 1 = less CPU than PgBouncer)\n"
    cpu_ratio_line(w, "pgsidecar", "pgbouncer", "cpu")
    cpu_ratio_line(w, "pgsidecar-plain", "pgbouncer", "cpu")
    printf "machine us/txn ratios (the whole machine's busy CPU per transaction; median of per-round ratios)\n"
    cpu_ratio_line(w, "pgsidecar", "pgbouncer", "machine")
    cpu_ratio_line(w, "pgsidecar-plain", "pgbouncer", "machine")
    cpu_ratio_line(w, "pgsidecar", "direct", "machine")
    cpu_ratio_line(w, "pgbouncer", "direct", "machine")
    printf "postgres us/txn ratios (what the Postgres clusters spent per transaction; median of per-round ratios)\n"
    cpu_ratio_line(w, "pgsidecar", "pgbouncer", "postgres")
    cpu_ratio_line(w, "pgsidecar-plain", "pgbouncer", "postgres")
    cpu_ratio_line(w, "pgbouncer", "direct", "postgres")
  }
  if (failures) printf "\n%d run(s) FAILED: see the pgbench logs beside results.tsv\n", failures
}
