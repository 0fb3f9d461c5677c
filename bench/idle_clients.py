#!/usr/bin/env python3
"""Holds N idle, logged-in PostgreSQL client connections (for the idle-clients memory benchmark).

Speaks the wire protocol itself (startup, SCRAM-SHA-256, md5, cleartext or trust) over asyncio streams,
at most --concurrency logins at a time, so that one process on a small machine holds 10,000 of them.
Protocol on stdout: "ready N" once N clients are logged in and idle (or "failed MESSAGE" and exit 1);
then, on a line (or EOF) on stdin, every client sends Terminate and closes; "closed" when all have.
The salted password is computed once per (salt, iterations): a proxy that answers every login with the
same salt costs one PBKDF2, not N.
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import os
import struct
import sys

_salted = {}


def _msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


async def _read_msg(reader):
    head = await reader.readexactly(5)
    n = struct.unpack("!I", head[1:5])[0]
    return head[0:1], await reader.readexactly(n - 4)


def _scram_proof(password, first_bare, server_first, final_bare):
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    salt, iters = base64.b64decode(attrs["s"]), int(attrs["i"])
    key = (salt, iters)
    if key not in _salted:
        _salted[key] = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iters)
    client_key = hmac.new(_salted[key], b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    auth_message = f"{first_bare},{server_first},{final_bare}".encode()
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    return base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()


async def login(args):
    """One client: connect, log in, wait for ReadyForQuery. Returns the open (reader, writer)."""
    reader, writer = await asyncio.open_connection(args.host, args.port)
    params = b"user\0" + args.user.encode() + b"\0database\0" + args.dbname.encode() + b"\0\0"
    body = struct.pack("!I", 196608) + params
    writer.write(struct.pack("!I", len(body) + 4) + body)
    first_bare = server_first = ""
    while True:
        kind, body = await _read_msg(reader)
        if kind == b"E":
            raise RuntimeError("server error: " + body.replace(b"\0", b" ").decode(errors="replace"))
        if kind == b"Z":
            return reader, writer
        if kind != b"R":
            continue  # ParameterStatus, BackendKeyData, NoticeResponse
        code = struct.unpack("!I", body[:4])[0]
        if code == 0:
            continue
        if code == 3:
            writer.write(_msg(b"p", args.password.encode() + b"\0"))
        elif code == 5:
            inner = hashlib.md5((args.password + args.user).encode()).hexdigest().encode()
            outer = b"md5" + hashlib.md5(inner + body[4:8]).hexdigest().encode()
            writer.write(_msg(b"p", outer + b"\0"))
        elif code == 10:
            nonce = base64.b64encode(os.urandom(18)).decode()
            first_bare = "n=,r=" + nonce
            first = ("n,," + first_bare).encode()
            writer.write(_msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first))
        elif code == 11:
            server_first = body[4:].decode()
            attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
            final_bare = "c=biws,r=" + attrs["r"]
            proof = _scram_proof(args.password, first_bare, server_first, final_bare)
            writer.write(_msg(b"p", f"{final_bare},p={proof}".encode()))
        elif code == 12:
            continue
        else:
            raise RuntimeError(f"unsupported authentication request {code}")
        await writer.drain()


async def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", default=os.environ.get("PGPASSWORD", ""))
    p.add_argument("--dbname", required=True)
    p.add_argument("-n", "--clients", type=int, default=10000)
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds for one login")
    args = p.parse_args()

    gate = asyncio.Semaphore(args.concurrency)

    async def one():
        async with gate:
            return await asyncio.wait_for(login(args), args.timeout)

    results = await asyncio.gather(*(one() for _ in range(args.clients)), return_exceptions=True)
    conns = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        print(f"failed {len(errors)} of {args.clients} logins; first: {errors[0]!r}", flush=True)
        for _, w in conns:
            w.close()
        sys.exit(1)
    print(f"ready {len(conns)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for _, w in conns:
        w.write(_msg(b"X", b""))
        w.close()
    await asyncio.gather(*(w.wait_closed() for _, w in conns), return_exceptions=True)
    print("closed", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
