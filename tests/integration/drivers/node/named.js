// named.js -- node-postgres named queries ({name, text, values}) from many concurrent
// clients through corral in transaction pooling (issue 10: before corral carried a
// client's prepared statements to whichever server it got, 182 of 400 such queries
// failed with `prepared statement "..." does not exist`; this script against that corral
// got 171 of 2000 ok, the rest 42P05 "already exists" and a client's "who" answered by
// another client's statement of that name).
//
// Usage: node named.js postgresql://USER:PASSWORD@HOST:PORT/DB [CLIENTS [ROUNDS]]
//
// CLIENTS (50) separate pg.Client connections, not a pg.Pool: every one is a client of
// corral of its own, so that with a small pool each one's statements are prepared on one
// server and used on another.  node-postgres sends a Parse with the name the first
// time a connection runs a named query and only Bind/Execute after that, trusting the
// name to exist; so every round after the first depends on corral.  Each of ROUNDS (8)
// rounds runs QUERIES_PER_ROUND named queries:
//   add_one  the same name and text on every client, used again every round
//   series   three parameters, several rows, every row checked
//   who      the same name on every client but a text of each client's own: corral
//            must keep one client's "who" from answering another's
//   tx_set, tx_get  inside BEGIN / COMMIT: a transaction-local setting made by one named
//            query is read by the next, in the same transaction (same txid)
// Every result is checked.  Prints "node-postgres: OK of TOTAL named queries ok" (and
// the distinct errors on stderr); exits 0 only if all TOTAL were ok.
'use strict';

const { Client } = require('pg');

const QUERIES_PER_ROUND = 5;

const [url, clientsArg, roundsArg] = process.argv.slice(2);
if (!url) {
	console.error('usage: node named.js URL [CLIENTS [ROUNDS]]');
	process.exit(2);
}
const CLIENTS = Number(clientsArg || 50);
const ROUNDS = Number(roundsArg || 8);
const TOTAL = CLIENTS * ROUNDS * QUERIES_PER_ROUND;

let ok = 0;
// Errors by kind (their text with the numbers in it as N): the first one's text, and how many.
const errors = new Map();

function failed(what, err) {
	const text = `${what}: ${err && err.code ? err.code + ': ' : ''}${err && err.message ? err.message : err}`;
	const key = text.replace(/\d+/g, 'N');
	const seen = errors.get(key);
	if (seen) seen.count++;
	else errors.set(key, { text, count: 1 });
}

function check(cond, what) {
	if (!cond) throw new Error(`wrong result: ${what}`);
}

// One named query; counts it ok when check(result) does not throw.
async function named(client, name, text, values, checkResult) {
	try {
		const res = await client.query({ name, text, values });
		checkResult(res);
		ok++;
		return res;
	} catch (err) {
		failed(name, err);
		return null;
	}
}

async function round(client, c, r) {
	// The same name and text on every client and every round.
	await named(client, 'add_one', 'select $1::int + 1 as n', [c * 100 + r], (res) => {
		check(res.rows.length === 1 && res.rows[0].n === c * 100 + r + 1, 'add_one');
	});

	// Several parameters and rows.
	const count = 2 + ((c + r) % 5);
	await named(
		client,
		'series',
		"select g as n, $1::text || ':' || g as label, $2::int * g as product " +
			'from generate_series(1, $3::int) g order by g',
		[`c${c}`, r + 1, count],
		(res) => {
			check(res.rows.length === count, `series: ${res.rows.length} rows, not ${count}`);
			res.rows.forEach((row, i) => {
				check(
					row.n === i + 1 && row.label === `c${c}:${i + 1}` && row.product === (r + 1) * (i + 1),
					`series row ${i}: ${JSON.stringify(row)}`
				);
			});
		}
	);

	// One name, a different text on each client.
	await named(client, 'who', `select $1::text || '/${c}' as who`, [`r${r}`], (res) => {
		check(res.rows.length === 1 && res.rows[0].who === `r${r}/${c}`, `who: ${JSON.stringify(res.rows)}`);
	});

	// Named queries inside a transaction block: the second sees the first's local setting.
	let inTx = false;
	try {
		await client.query('BEGIN');
		inTx = true;
	} catch (err) {
		failed('BEGIN', err);
	}
	const tag = `c${c}r${r}`;
	let xid = null;
	await named(
		client,
		'tx_set',
		"select set_config('corral_test.tag', $1, true) as v, txid_current()::text as x",
		[tag],
		(res) => {
			check(res.rows.length === 1 && res.rows[0].v === tag, `tx_set: ${JSON.stringify(res.rows)}`);
			xid = res.rows[0].x;
		}
	);
	await named(
		client,
		'tx_get',
		"select current_setting('corral_test.tag', true) || $1::text as v, txid_current()::text as x",
		['!'],
		(res) => {
			check(
				res.rows.length === 1 && res.rows[0].v === `${tag}!` && xid !== null && res.rows[0].x === xid,
				`tx_get: ${JSON.stringify(res.rows)}, txid of tx_set ${xid}`
			);
		}
	);
	if (inTx) {
		try {
			await client.query(xid === null ? 'ROLLBACK' : 'COMMIT');
		} catch (err) {
			failed('COMMIT', err);
		}
	}
}

async function runClient(c) {
	const client = new Client({
		connectionString: url,
		connectionTimeoutMillis: 20000,
		query_timeout: 20000,
		application_name: `node-named-${c}`,
	});
	client.on('error', (err) => failed('connection', err));
	try {
		await client.connect();
	} catch (err) {
		failed('connect', err);
		return;
	}
	for (let r = 0; r < ROUNDS; r++) await round(client, c, r);
	try {
		await client.end();
	} catch (err) {
		failed('end', err);
	}
}

async function main() {
	const started = Date.now();
	await Promise.all(Array.from({ length: CLIENTS }, (_, c) => runClient(c)));
	const secs = ((Date.now() - started) / 1000).toFixed(1);
	for (const { text, count } of errors.values()) console.error(`node-postgres: ${count} x ${text}`);
	console.log(
		`node-postgres: ${ok} of ${TOTAL} named queries ok ` +
			`(${CLIENTS} clients, ${ROUNDS} rounds, ${secs} s)`
	);
	process.exit(ok === TOTAL && errors.size === 0 ? 0 : 1);
}

main().catch((err) => {
	console.error('node-postgres: ' + (err && err.stack ? err.stack : err));
	process.exit(1);
});
