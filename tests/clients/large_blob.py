#!/usr/bin/python3
"""Large messages through a proxy with real Python clients (issue 10): a 20 MB blob
- psycopg2 (client-side interpolation): SELECT %s::bytea, md5(%s::bytea) sends an ~80 MB Query;
- psycopg 3 binary parameters (%b, extended protocol: a 40 MB Bind), unnamed and prepared.
Each answer is checked against hashlib. Prints "ok <case>" per case; exit code 0 when all passed,
1 on a wrong answer or error, 77 when a client library is missing.

Usage: large_blob.py --dsn CONNINFO [--mb 20]
"""
import argparse
import hashlib
import os
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dsn", required=True)
    p.add_argument("--mb", type=int, default=20)
    args = p.parse_args()
    try:
        import psycopg
        import psycopg2
    except ImportError as e:
        print("missing client library:", e)
        return 77
    blob = os.urandom(args.mb * 1024 * 1024)
    want = hashlib.md5(blob).hexdigest()

    with psycopg2.connect(args.dsn) as conn:
        cur = conn.cursor()
        cur.execute("SELECT %s::bytea, md5(%s::bytea)", (blob, blob))
        back, digest = cur.fetchone()
        if bytes(back) != blob or digest != want:
            print("psycopg2: wrong answer")
            return 1
        cur.execute("SELECT 1")
        print("ok psycopg2-simple")
    conn.close()

    with psycopg.connect(args.dsn, prepare_threshold=None) as conn:
        got = conn.execute("SELECT length(%b), md5(%b)", (blob, blob)).fetchone()
        if got != (len(blob), want):
            print("psycopg3 unnamed: wrong answer", got[0])
            return 1
        print("ok psycopg3-binary-unnamed")
        for _ in range(2):
            got = conn.execute("SELECT length(%b), md5(%b)", (blob, blob), prepare=True).fetchone()
            if got != (len(blob), want):
                print("psycopg3 prepared: wrong answer", got[0])
                return 1
        print("ok psycopg3-binary-prepared")
    return 0


if __name__ == "__main__":
    sys.exit(main())
