/**
 * PostgreSQL's CPU for one replica batch, by the form the batch takes: `tsx bench/profile/pg-batch.ts [events] [runs]`.
 * The script a `cqrs consume` batch of `events` author SAVEs sends (BEGIN, the pks' advisory locks, the
 * version-gated upsert, then ROLLBACK instead of COMMIT, so every run inserts the same new rows) is
 * built three ways from the same ops: the rows as an array of the table's row type (the default), as
 * JSON read as the written columns' types (a table with a domain column), and as JSON read by
 * json_populate_recordset (columns not known). Each runs `runs` times on one connection, alternated;
 * the server process's CPU is read from /proc before and after. Linux only.
 * TOMBSTONES=n first stores n tombstones of other pks of the same cqrs_id, with the table's statistics
 * taken before them (autovacuum off for it), as on a replica whose deletes outran its last ANALYZE.
 */
import pg from 'pg'
import { cqrsReplica, decodeMessage, memory, PG_LAYOUT_SQL, pgApplyStatement, pgLayout, pgLockStatement, pgScript, silentLogger, toApplyOp } from '../package.js'
import { authorEventBody, createTestDatabase } from '../support.js'
import { statOf } from './cpu.js'

const [nArg = '200', runsArg = '300'] = process.argv.slice(2)
const N = Number(nArg)
const RUNS = Number(runsArg)
const db = await createTestDatabase('postgresql', 'pgbatch')
const prisma = await db.client()
const cqrsId = 'author_pgbatch'
const rep = cqrsReplica({ prisma, transport: memory(), queue: 'pgbatch', handlers: { [cqrsId]: { model: 'authorRef' } }, logger: silentLogger })
const { target } = rep.routes.get(cqrsId) as { target: any }
const ops = Array.from({ length: N }, (_, k) => toApplyOp(target, decodeMessage(authorEventBody(cqrsId, k + 1, 1))))
const client = new pg.Client({ connectionString: db.url })
await client.connect()
const layout = pgLayout((await client.query(PG_LAYOUT_SQL, ['"author_ref"'])).rows)!
if (process.env.TOMBSTONES) {
  await client.query('ALTER TABLE cqrs_tombstone SET (autovacuum_enabled = false)')
  await client.query('ANALYZE cqrs_tombstone')
  await client.query(`INSERT INTO cqrs_tombstone (cqrs_id, pk, revision, updated) SELECT $1, (1000000 + g)::text, 1, now() FROM generate_series(1, $2::int) g`, [cqrsId, Number(process.env.TOMBSTONES)])
}
// Row arrays whatever the batch's size (the store takes them from ROW_ARRAY_MIN ops).
const script = (l: typeof layout | undefined) => pgScript([pgLockStatement(cqrsId, ops.map((o) => o.pkKey)), pgApplyStatement(target, ops, 'newer', l, 1)]).replace(/COMMIT$/, 'ROLLBACK')
const forms = { 'row array': script(layout), 'typed JSON': script({ ...layout, domains: true }), 'json_populate_recordset': script(undefined) }
const pid = (await client.query('SELECT pg_backend_pid() AS p')).rows[0].p
const cpuMs = () => statOf(pid).cpuMs
const spent = new Map<string, number>(Object.keys(forms).map((k) => [k, 0]))
for (const sql of Object.values(forms)) for (let i = 0; i < 20; i++) await client.query(sql) // warm
for (let r = 0; r < RUNS; r++) {
  for (const [name, sql] of Object.entries(forms)) {
    const c0 = cpuMs()
    for (let i = 0; i < 10; i++) await client.query(sql)
    spent.set(name, spent.get(name)! + cpuMs() - c0)
  }
}
const base = spent.get('json_populate_recordset')! / (RUNS * 10)
for (const [name, ms] of spent) {
  const per = ms / (RUNS * 10)
  console.log(`${name.padEnd(24)} ${per.toFixed(3)} ms of PostgreSQL CPU per ${N}-event batch, ${((per * 1000) / N).toFixed(1)} µs an event, ${(per / base).toFixed(2)}x of json_populate_recordset; ${(forms as Record<string, string>)[name].length} bytes`)
}
await client.end()
await rep.store.close()
await prisma.$disconnect()
await db.drop()
