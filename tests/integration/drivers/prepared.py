"""Drivers' prepared statements through corral in transaction pooling (test_prepared.c).

asyncpg with its default statement cache: 200 concurrent tasks over a pool of 20
connections; psycopg 3: prepare=True, the default prepare_threshold over 50 executions
per connection, and pipeline mode.  Every result is checked.  Usage: prepared.py DSN
"""
import asyncio
import sys

import asyncpg
import psycopg

DSN = sys.argv[1]


async def asyncpg_tasks():
    pool = await asyncpg.create_pool(DSN, min_size=20, max_size=20)

    async def task(i):
        async with pool.acquire() as con:
            v = await con.fetchval("select $1::int + 1", i)
            assert v == i + 1, (v, i)
            rows = await con.fetch("select $1::text as t, n from generate_series(1, $2::int) n",
                                   str(i), i % 7 + 1)
            assert len(rows) == i % 7 + 1 and rows[0]["t"] == str(i), rows
            async with con.transaction():
                w = await con.fetchval("select $1::int * 3", i)
                assert w == 3 * i
            return v

    res = await asyncio.gather(*[task(i) for i in range(200)], return_exceptions=True)
    bad = [r for r in res if isinstance(r, BaseException)]
    await pool.close()
    print(f"asyncpg: {200 - len(bad)} of 200 tasks ok")
    if bad:
        raise bad[0]


def psycopg_runs():
    conns = [psycopg.connect(DSN, autocommit=True) for _ in range(10)]
    for n in range(50):  # default prepare_threshold: prepared from the 5th execution on
        for k, conn in enumerate(conns):
            v = conn.execute("select %s::int * 2 + %s::int", (n, k)).fetchone()[0]
            assert v == 2 * n + k, (v, n, k)
    for k, conn in enumerate(conns):
        for n in range(20):
            v = conn.execute("select %s::int + 3", (n,), prepare=True).fetchone()[0]
            assert v == n + 3
        with conn.pipeline():
            curs = [conn.execute("select %s::int - %s::int", (n, k), prepare=True)
                    for n in range(30)]
        assert [c.fetchone()[0] for c in curs] == [n - k for n in range(30)]
    for conn in conns:
        conn.close()
    print("psycopg: prepare_threshold, prepare=True and pipeline ok")


asyncio.run(asyncpg_tasks())
psycopg_runs()
print("all prepared statements ok")
