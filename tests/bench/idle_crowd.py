#!/usr/bin/env python3
"""idle_crowd.py -- open N PostgreSQL client connections (startup + auth) and hold them idle.

Usage: idle_crowd.py [--host 127.0.0.1] --port PORT [--user bench] [--password bench]
                  [--db bench] [-n 5000] [--concurrency 200] [--max-failures F] [--timeout 300]

Prints one line `READY {"connected": .., "failed": .., "secs": .., "errors": {msg: count}}`
once all attempts are done (it stops early after F failures, default max(100, n/10)), then
holds the connections until a line or EOF arrives on stdin, closes them and prints
`DONE {"alive": ..}` (alive = not closed by the server meanwhile).  No query is ever sent,
so a pooler needs no server connection for these clients.

Python stdlib only: speaks the v3 wire protocol itself (SCRAM-SHA-256, md5, cleartext).
The SCRAM SaltedPassword (4096 PBKDF2 rounds) is cached per salt, as RFC 5802 allows, so a
login costs the client a few HMACs; asyncpg's pure-Python SCRAM needed ~16 ms CPU per
connection, i.e. 80 s for 5000.

A copy of the team's ../shared/bench/idle-crowd, so that tests/bench depends on nothing
outside the repository; bench.py runs it for the idle5000 scenario.
"""
import argparse, asyncio, base64, hashlib, hmac, json, os, re, resource, struct, sys, time

_salted_cache = {}


class PgError(Exception):
    pass


def msg(kind, body):
    return kind + struct.pack("!I", len(body) + 4) + body


async def read_msg(r):
    head = await r.readexactly(5)
    kind, n = head[:1], struct.unpack("!I", head[1:])[0]
    return kind, await r.readexactly(n - 4)


def error_text(body):  # ErrorResponse fields: S severity, M message, ...
    fields = {chr(f[0]): f[1:].decode(errors="replace") for f in body.split(b"\0") if f}
    return f"{fields.get('S', 'ERROR')}: {fields.get('M', '?')}"


def scram_client_final(password, client_first_bare, server_first, nonce):
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    if not attrs["r"].startswith(nonce):
        raise PgError("SCRAM: bad server nonce")
    key = (password, attrs["s"], int(attrs["i"]))
    if key not in _salted_cache:
        _salted_cache[key] = hashlib.pbkdf2_hmac("sha256", password.encode(),
                                                 base64.b64decode(attrs["s"]), int(attrs["i"]))
    salted = _salted_cache[key]
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    without_proof = "c=biws,r=" + attrs["r"]
    auth_msg = ",".join((client_first_bare, server_first, without_proof)).encode()
    sig = hmac.digest(hashlib.sha256(client_key).digest(), auth_msg, "sha256")
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    server_sig = hmac.digest(hmac.digest(salted, b"Server Key", "sha256"), auth_msg, "sha256")
    return without_proof + ",p=" + base64.b64encode(proof).decode(), server_sig


async def login(a):
    r, w = await asyncio.open_connection(a.host, a.port)
    try:
        params = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in
                          (("user", a.user), ("database", a.db), ("application_name", "idle-crowd")))
        body = struct.pack("!I", 196608) + params + b"\0"
        w.write(struct.pack("!I", len(body) + 4) + body)
        server_sig = None
        while True:
            kind, body = await read_msg(r)
            if kind == b"E":
                raise PgError(error_text(body))
            if kind == b"Z":
                return r, w
            if kind != b"R":
                continue  # ParameterStatus, BackendKeyData, NoticeResponse
            code = struct.unpack("!I", body[:4])[0]
            if code == 0:                                   # AuthenticationOk
                continue
            if code == 3:                                   # cleartext
                w.write(msg(b"p", a.password.encode() + b"\0"))
            elif code == 5:                                 # md5
                inner = hashlib.md5((a.password + a.user).encode()).hexdigest().encode()
                w.write(msg(b"p", b"md5" + hashlib.md5(inner + body[4:8]).hexdigest().encode() + b"\0"))
            elif code == 10:                                # SASL: pick SCRAM-SHA-256
                if b"SCRAM-SHA-256\0" not in body[4:]:
                    raise PgError("no SCRAM-SHA-256 offered")
                nonce = base64.b64encode(os.urandom(18)).decode()
                first_bare = "n=,r=" + nonce
                first = ("n,," + first_bare).encode()
                w.write(msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first))
            elif code == 11:                                # SASLContinue
                final, server_sig = scram_client_final(a.password, first_bare, body[4:].decode(), nonce)
                w.write(msg(b"p", final.encode()))
            elif code == 12:                                # SASLFinal
                v = dict(kv.split("=", 1) for kv in body[4:].decode().split(","))
                if base64.b64decode(v.get("v", "")) != server_sig:
                    raise PgError("SCRAM: bad server signature")
            else:
                raise PgError(f"unsupported auth request {code}")
    except BaseException:
        w.close()
        raise


def short(err):
    text = str(err).strip() or type(err).__name__
    return re.sub(r"\d+", "N", text.splitlines()[0])[:120]


async def main(a):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if a.n + 50 > hard:
        print(f"idle-crowd: warning: fd limit {hard} < n={a.n}", file=sys.stderr)
    max_fail = a.max_failures if a.max_failures is not None else max(100, a.n // 10)
    conns, errors, failed, closed = [], {}, 0, 0
    sem = asyncio.Semaphore(a.concurrency)
    t0 = time.monotonic()

    async def watch(r):  # notice when the server side drops an idle client
        nonlocal closed
        try:
            while await r.read(4096):
                pass
        except Exception:
            pass
        closed += 1

    async def one():
        nonlocal failed
        async with sem:
            if failed >= max_fail:
                return
            try:
                r, w = await asyncio.wait_for(login(a), 60)
                conns.append((w, asyncio.create_task(watch(r))))
            except Exception as e:  # failures are data, not a crash
                failed += 1
                errors[short(e)] = errors.get(short(e), 0) + 1

    try:
        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(a.n))), a.timeout)
    except asyncio.TimeoutError:
        errors["harness timeout while connecting"] = 1
    print("READY " + json.dumps({"connected": len(conns), "failed": failed,
                                 "secs": round(time.monotonic() - t0, 2), "errors": errors}),
          flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    alive = len(conns) - closed
    for w, task in conns:
        task.cancel()
        try:
            w.write(msg(b"X", b""))                         # Terminate
            w.close()
        except Exception:
            pass
    await asyncio.sleep(0.2)
    print("DONE " + json.dumps({"alive": alive}), flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", default=os.environ.get("BENCH_USER", "bench"))
    p.add_argument("--password", default=os.environ.get("BENCH_PASSWORD", "bench"))
    p.add_argument("--db", default=os.environ.get("BENCH_DB", "bench"))
    p.add_argument("-n", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--max-failures", type=int, default=None)
    p.add_argument("--timeout", type=float, default=300)
    asyncio.run(main(p.parse_args()))
