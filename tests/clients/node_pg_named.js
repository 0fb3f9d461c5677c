#!/usr/bin/env node
// node-postgres (`pg`) clients, each on its own connection, running named prepared statements
// ({name, text, values}) and short transactions whose answers name the client, so a pooler that mixes
// up sessions or prepared statements is caught. node-postgres sends Parse with the name once per
// connection and afterwards only Bind/Execute by name: through a transaction pooler that only works
// when the pooler re-prepares the statement on whichever server the client lands on (issue 3).
//
// Usage: node node_pg_named.js --dsn CONNINFO_URL [--clients 20] [--iterations 50] [--table t]
// Exit code 0 when every answer was right; 1 otherwise (the first errors are printed).
'use strict';
const { Client } = require('pg');

function parseArgs(argv) {
  const a = { clients: 20, iterations: 50, table: 'it_node_pg', dsn: '' };
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in a)) throw new Error(`unknown option ${argv[i]}`);
    a[key] = typeof a[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!a.dsn) throw new Error('--dsn is required');
  return a;
}

function check(cond, what) {
  if (!cond) throw new Error(what);
}

// One round: 4 statements, all named; returns how many ran.
async function oneRound(c, cid, i, table) {
  let r = await c.query({ name: 'q1', text: 'SELECT $1::int * 1000 + $2::int AS v, $3::text AS who',
                          values: [cid, i, `c${cid}`] });
  check(r.rows[0].v === cid * 1000 + i && r.rows[0].who === `c${cid}`, `q1 got ${JSON.stringify(r.rows)}`);
  r = await c.query({ name: 'q2', text: "SELECT $1::text || '-' || $2::text AS s", values: [`c${cid}`, `${i}`] });
  check(r.rows[0].s === `c${cid}-${i}`, `q2 got ${JSON.stringify(r.rows)}`);
  await c.query('BEGIN');
  try {
    await c.query({ name: 'ins', text: `INSERT INTO ${table} (cid, i) VALUES ($1, $2)`, values: [cid, i] });
    r = await c.query({ name: 'cnt', text: `SELECT count(*)::int AS n FROM ${table} WHERE cid = $1 AND i = $2`,
                        values: [cid, i] });
    check(r.rows[0].n === 1, `own insert visible ${r.rows[0].n} times`);
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  }
  return 4;
}

async function client(args, cid, tally) {
  const c = new Client({ connectionString: args.dsn });
  try {
    await c.connect();
    for (let i = 0; i < args.iterations; i++) {
      const n = await oneRound(c, cid, i, args.table);
      tally.statements += n;
    }
  } catch (e) {
    tally.errors.push(`client ${cid}: ${e.code || ''} ${e.message}`);
  } finally {
    await c.end().catch(() => {});
  }
}

async function main() {
  const args = parseArgs(process.argv);
  const setup = new Client({ connectionString: args.dsn });
  await setup.connect();
  await setup.query(`DROP TABLE IF EXISTS ${args.table}`);
  await setup.query(`CREATE TABLE ${args.table} (cid int, i int)`);
  const tally = { statements: 0, errors: [] };
  await Promise.all(Array.from({ length: args.clients }, (_, cid) => client(args, cid, tally)));
  const rows = (await setup.query(`SELECT count(*)::int AS n FROM ${args.table}`)).rows[0].n;
  await setup.query(`DROP TABLE ${args.table}`);
  await setup.end();
  const expected = args.clients * args.iterations;
  console.log(`clients=${args.clients} iterations=${args.iterations} statements=${tally.statements} ` +
              `rows=${rows}/${expected} errors=${tally.errors.length}`);
  for (const e of tally.errors.slice(0, 10)) console.error(e);
  return tally.errors.length === 0 && rows === expected ? 0 : 1;
}

main().then((code) => process.exit(code), (e) => { console.error(`fatal: ${e.stack || e}`); process.exit(1); });
