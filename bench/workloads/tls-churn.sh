# shellcheck shell=bash
# shellcheck disable=SC2034  # read by bench/run.sh, which sources this file
# TLS login churn: a new connection per transaction (pgbench -C) with sslmode=require, so every
# transaction pays a TLS handshake and a SCRAM login (over TLS: SCRAM-SHA-256-PLUS where offered).
# pgsidecar uses the dev config's [tls] (client_tls = "allow", .dev/tls/proxy.crt); PgBouncer gets
# client_tls_sslmode = allow with the dev nodes' certificate (scripts/pgbouncer.sh); direct Postgres
# runs ssl = on. The CPU figure of each proxy includes its handshakes.
WORKLOAD_DESCRIPTION="pgbench -S -C -M simple with sslmode=require: a TLS handshake and login per select"
WORKLOAD_PGBENCH_ARGS=(-S -C -M simple)
WORKLOAD_PGSSLMODE=require
