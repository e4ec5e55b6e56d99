"""Cancel through corral with the drivers functions use: asyncpg's timeout= and
psycopg 3's cancel() must end the right statement with 57014 while another client's
statement keeps running, and leave the connection usable.

Usage: python3 cancel.py DSN   (prints one line per check; exits non-zero on failure)
Run by tests/integration/test_drivers.c with Debian's /usr/bin/python3.
"""
import asyncio
import sys
import threading
import time

import asyncpg
import psycopg

DSN = sys.argv[1]


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        sys.exit(1)


async def with_asyncpg():
    # Transaction pooling: no named statements kept across transactions (issue 10).
    victim = await asyncpg.connect(DSN, statement_cache_size=0)
    other = await asyncpg.connect(DSN, statement_cache_size=0)
    others = asyncio.ensure_future(other.fetchval("select 'other-' || pg_sleep(1.5)::text"))
    t0 = time.monotonic()
    try:
        await victim.fetchval("select pg_sleep(30)", timeout=0.5)
        check(False, "asyncpg: timeout= ended nothing")
    except asyncio.TimeoutError:
        took = time.monotonic() - t0
        check(took < 5, "asyncpg: timeout=0.5 returned after %.2f s" % took)
    check(await victim.fetchval("select 'after'") == "after", "asyncpg: connection usable after the cancel")
    check((await others) == "other-", "asyncpg: the other client's statement ran to its end")
    await victim.close()
    await other.close()


def with_psycopg():
    victim = psycopg.connect(DSN, autocommit=True, prepare_threshold=None)
    other = psycopg.connect(DSN, autocommit=True, prepare_threshold=None)
    result = {}

    def run_other():
        result["other"] = other.execute("select 'other-' || pg_sleep(1.5)::text").fetchone()[0]

    th = threading.Thread(target=run_other)
    th.start()
    timer = threading.Timer(0.5, victim.cancel)
    timer.start()
    t0 = time.monotonic()
    try:
        victim.execute("select pg_sleep(30)")
        check(False, "psycopg: cancel() ended nothing")
    except psycopg.errors.QueryCanceled as e:
        took = time.monotonic() - t0
        check(e.sqlstate == "57014" and took < 5,
              "psycopg: cancel() gave %s after %.2f s" % (e.sqlstate, took))
    check(victim.execute("select 'after'").fetchone()[0] == "after", "psycopg: connection usable after the cancel")
    th.join()
    check(result.get("other") == "other-", "psycopg: the other client's statement ran to its end")
    victim.close()
    other.close()


asyncio.run(with_asyncpg())
with_psycopg()
print("drivers: all cancels reached the right statement")
