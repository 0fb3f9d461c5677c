#!/usr/bin/python3
"""Many threads, each with its own psycopg 3 connection, running parameterised queries and short
transactions whose answers name the thread, so a pooler that mixes up sessions or prepared
statements is caught.

With --prepare-threshold 0 psycopg prepares every statement on the server as a named prepared
statement (_pg3_N) before its first use; through a transaction pooler that only works when the
pooler tracks prepared statements per client (issue 3).

Usage: psycopg_threads.py --dsn CONNINFO [--threads 50] [--iterations 100]
                          [--prepare-threshold none|0|N]
Exit code 0 when every answer was right; 1 otherwise (the first errors are printed).
"""
import argparse
import sys
import threading

import psycopg


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dsn", required=True)
    p.add_argument("--threads", type=int, default=50)
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--prepare-threshold", default="0",
                   help="psycopg prepare_threshold: 'none' never prepares, 0 always")
    p.add_argument("--table", default="it_psycopg")
    return p.parse_args()


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.queries = 0
        self.errors = []

    def ok(self, n=1):
        with self.lock:
            self.queries += n

    def fail(self, who, what):
        with self.lock:
            self.errors.append(f"thread {who}: {what}")


def one_round(conn, tid, i, table):
    """Runs a few statements; returns how many, raises AssertionError on a wrong answer."""
    with conn.cursor() as cur:
        cur.execute("SELECT %s::int * 1000 + %s::int, %s::text", (tid, i, f"t{tid}"))
        got = cur.fetchone()
        assert got == (tid * 1000 + i, f"t{tid}"), f"query 1 got {got}"
        cur.execute("SELECT %s::text || '-' || %s::text", (f"t{tid}", str(i)))
        got = cur.fetchone()[0]
        assert got == f"t{tid}-{i}", f"query 2 got {got}"
        with conn.transaction():
            cur.execute(f"INSERT INTO {table} (tid, i) VALUES (%s, %s)", (tid, i))
            cur.execute(f"SELECT count(*) FROM {table} WHERE tid = %s AND i = %s", (tid, i))
            got = cur.fetchone()[0]
            assert got == 1, f"own insert visible {got} times"
    return 4


def worker(args, threshold, tid, tally, start):
    try:
        conn = psycopg.connect(args.dsn, autocommit=True, prepare_threshold=threshold)
    except Exception as e:  # noqa: BLE001 - report every kind of failure the same way
        tally.fail(tid, f"connect: {e}")
        start.abort()  # the others stop waiting for this thread (BrokenBarrierError)
        return
    try:
        start.wait(timeout=60)
        for i in range(args.iterations):
            tally.ok(one_round(conn, tid, i, args.table))
    except Exception as e:  # noqa: BLE001
        tally.fail(tid, f"{type(e).__name__}: {e}")
    finally:
        conn.close()


def main():
    args = parse_args()
    threshold = None if args.prepare_threshold == "none" else int(args.prepare_threshold)
    with psycopg.connect(args.dsn, autocommit=True) as setup:
        setup.execute(f"DROP TABLE IF EXISTS {args.table}")
        setup.execute(f"CREATE TABLE {args.table} (tid int, i int)")
    tally = Tally()
    start = threading.Barrier(args.threads)
    threads = [threading.Thread(target=worker, args=(args, threshold, t, tally, start))
               for t in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with psycopg.connect(args.dsn, autocommit=True) as check:
        rows = check.execute(f"SELECT count(*) FROM {args.table}").fetchone()[0]
        check.execute(f"DROP TABLE {args.table}")
    expected_rows = args.threads * args.iterations
    print(f"threads={args.threads} iterations={args.iterations} "
          f"prepare_threshold={args.prepare_threshold} statements={tally.queries} "
          f"rows={rows}/{expected_rows} errors={len(tally.errors)}")
    for e in tally.errors[:10]:
        print(e, file=sys.stderr)
    return 0 if not tally.errors and rows == expected_rows else 1


if __name__ == "__main__":
    sys.exit(main())
