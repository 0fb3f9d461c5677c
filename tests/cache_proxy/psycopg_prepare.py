"""Issue 12 item 6: psycopg 3 with prepare_threshold sends a statement unnamed (a Query when it has no
parameters, Parse/Bind otherwise) until its threshold, then as a named prepared statement. Runs each
statement `--times` times on one connection and prints the values each call returned, one line per
call, so the caller can compare them and count what reached Postgres."""
import argparse
import sys

import psycopg


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--times", type=int, default=10)
    ap.add_argument("--prepare-threshold", type=int, default=5)
    a = ap.parse_args()
    with psycopg.connect(a.dsn, autocommit=True, prepare_threshold=a.prepare_threshold) as conn:
        with_param = f"SELECT id, v FROM public.{a.table} WHERE id = %s"
        without = f"SELECT id, v FROM public.{a.table} WHERE id = 2"
        for i in range(a.times):
            row = conn.execute(with_param, (3,)).fetchone()
            print(f"param {i} {row[0]} {row[1]}")
            row = conn.execute(without).fetchone()
            print(f"plain {i} {row[0]} {row[1]}")
        # psycopg's own record of the statements it prepared (names it will Bind): both, after the
        # threshold. An internal attribute: printed as "?" if this psycopg keeps it elsewhere.
        names = getattr(getattr(conn, "_prepared", None), "_names", None)
        print(f"prepared {len(names) if names is not None else '?'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
