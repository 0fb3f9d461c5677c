#!/usr/bin/env node
// The `postgres` npm client (porsager/postgres): prepared statements by default (named, reused per
// connection), many queries pipelined on one connection, and sql.begin() transactions. Each instance
// has one connection (max: 1) so its concurrent queries are pipelined; answers name the instance, so
// a pooler that mixes up sessions or prepared statements is caught.
//
// Usage: node node_postgres_js.js --dsn URL [--instances 10] [--iterations 30] [--table t]
// Exit code 0 when every answer was right; 1 otherwise (the first errors are printed).
'use strict';
const postgres = require('postgres');

function parseArgs(argv) {
  const a = { instances: 10, iterations: 30, table: 'it_node_postgres', dsn: '' };
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

// One round: 8 pipelined selects, then a transaction with an insert and a read-back.
async function oneRound(sql, id, i, table) {
  const pipelined = await Promise.all(Array.from({ length: 8 }, (_, k) =>
    sql`SELECT ${id}::int * 100000 + ${i}::int * 10 + ${k}::int AS v, ${'p' + id}::text AS who`));
  pipelined.forEach((rows, k) => {
    check(rows[0].v === id * 100000 + i * 10 + k && rows[0].who === 'p' + id,
          `pipelined ${k} got ${JSON.stringify(rows)}`);
  });
  const n = await sql.begin(async (tx) => {
    await tx`INSERT INTO ${tx(table)} (pid, i) VALUES (${id}, ${i})`;
    const [r] = await tx`SELECT count(*)::int AS n FROM ${tx(table)} WHERE pid = ${id} AND i = ${i}`;
    return r.n;
  });
  check(n === 1, `own insert visible ${n} times`);
  return 10;
}

async function instance(args, id, tally) {
  const sql = postgres(args.dsn, { max: 1, prepare: true, onnotice: () => {} });
  try {
    for (let i = 0; i < args.iterations; i++) {
      const n = await oneRound(sql, id, i, args.table);
      tally.statements += n;
    }
  } catch (e) {
    tally.errors.push(`instance ${id}: ${e.code || ''} ${e.message}`);
  } finally {
    await sql.end({ timeout: 5 }).catch(() => {});
  }
}

async function main() {
  const args = parseArgs(process.argv);
  const setup = postgres(args.dsn, { max: 1, onnotice: () => {} });
  await setup.unsafe(`DROP TABLE IF EXISTS ${args.table}`);
  await setup.unsafe(`CREATE TABLE ${args.table} (pid int, i int)`);
  const tally = { statements: 0, errors: [] };
  await Promise.all(Array.from({ length: args.instances }, (_, id) => instance(args, id, tally)));
  const [{ n: rows }] = await setup.unsafe(`SELECT count(*)::int AS n FROM ${args.table}`);
  await setup.unsafe(`DROP TABLE ${args.table}`);
  await setup.end({ timeout: 5 });
  const expected = args.instances * args.iterations;
  console.log(`instances=${args.instances} iterations=${args.iterations} statements=${tally.statements} ` +
              `rows=${rows}/${expected} errors=${tally.errors.length}`);
  for (const e of tally.errors.slice(0, 10)) console.error(e);
  return tally.errors.length === 0 && rows === expected ? 0 : 1;
}

main().then((code) => process.exit(code), (e) => { console.error(`fatal: ${e.stack || e}`); process.exit(1); });
