/**
 * PostgreSQL's CPU for one replica batch against the raw consumer's upsert:
 * `tsx bench/profile/pg-batch-parts.ts [events] [runs]`. Four forms, each a batch of `events` author
 * SAVEs of pks never stored before, committed: the script a `cqrs consume` batch sends (BEGIN, the pks'
 * advisory locks and the version-gated upsert, both PREPAREd once on the connection and EXECUTEd, as a
 * row array from ROW_ARRAY_MIN events, else JSON; COMMIT), the same with both statements inline (as
 * before they were prepared), that without the locks, and the raw consumer's one `unnest` upsert with
 * parameters, a prepared statement too (bench/support.ts rawApplier). Alternated, `runs`
 * rounds of 10 batches each; the server process's CPU is read from /proc before and after. Run it
 * with two batch sizes to split the cost into a part per event and a part per batch. Linux only.
 */
import pg from 'pg'
import { cqrsReplica, decodeMessage, memory, PG_LAYOUT_SQL, pgApplyStatement, pgLayout, pgLockStatement, pgPreparedScript, pgScript, silentLogger, toApplyOp } from '../package.js'
import { authorEventBody, createTestDatabase, rawColumns } from '../support.js'
import { statOf } from './cpu.js'

const [nArg = '200', runsArg = '40'] = process.argv.slice(2)
const N = Number(nArg)
const RUNS = Number(runsArg)
const db = await createTestDatabase('postgresql', 'pgparts')
const prisma = await db.client()
const cqrsId = 'author_pgparts'
const rep = cqrsReplica({ prisma, transport: memory(), queue: 'pgparts', handlers: { [cqrsId]: { model: 'authorRef' } }, logger: silentLogger })
const { target } = rep.routes.get(cqrsId) as { target: any }
const client = new pg.Client({ connectionString: db.url })
await client.connect()
const layout = pgLayout((await client.query(PG_LAYOUT_SQL, ['"author_ref"'])).rows)!
const COLS = ['id', 'name', 'birth_date', 'rating', 'balance', 'last_seen', 'is_active', 'profile', 'nickname', 'external_id', 'cqrs_revision', 'cqrs_updated']
const RAW = `INSERT INTO author_ref AS t (${COLS.join(', ')}) SELECT * FROM unnest($1::int[], $2::text[], $3::date[], $4::int[], $5::numeric[], $6::timestamptz[], $7::bool[], $8::jsonb[], $9::text[], $10::text[], $11::int[], $12::timestamptz[]) ON CONFLICT (id) DO UPDATE SET ${COLS.slice(1).map((c) => `${c} = EXCLUDED.${c}`).join(', ')} WHERE t.cqrs_revision < EXCLUDED.cqrs_revision`

let next = 1
/** The statements PREPAREd on `client` so far, as the store records them per connection. */
const prepared = new Set<string>()
const bodies = () => Array.from({ length: N }, () => authorEventBody(cqrsId, next++, 1))
const ops = () => bodies().map((b) => toApplyOp(target, decodeMessage(b)))
/** One batch, built before it is timed. */
const forms: Record<string, () => () => Promise<unknown>> = {
  'cqrs script': () => {
    const o = ops()
    const { script, prepares } = pgPreparedScript([pgLockStatement(cqrsId, o.map((x) => x.pkKey)), pgApplyStatement(target, o, 'newer', layout)], 2, prepared)
    return () => client.query(script).then(() => prepares.forEach((n) => prepared.add(n)))
  },
  'inline (before)': () => {
    const o = ops()
    const sql = pgScript([pgLockStatement(cqrsId, o.map((x) => x.pkKey)), pgApplyStatement(target, o, 'newer', layout)])
    return () => client.query(sql)
  },
  'inline, no locks': () => {
    const sql = pgScript([pgApplyStatement(target, ops(), 'newer', layout)])
    return () => client.query(sql)
  },
  'raw upsert': () => {
    const values = rawColumns(bodies().map((b) => Buffer.from(b)))
    return () => client.query({ name: 'raw_upsert', text: RAW, values })
  },
}
const pid = (await client.query('SELECT pg_backend_pid() AS p')).rows[0].p
const names = Object.keys(forms)
const spent = new Map(names.map((k) => [k, 0]))
for (let i = 0; i < 10; i++) for (const k of names) await forms[k]()() // warm
for (let r = 0; r < RUNS; r++) {
  for (const k of names.map((_, i) => names[(i + r) % names.length])) {
    const batches = Array.from({ length: 10 }, forms[k])
    const c0 = statOf(pid).cpuMs
    for (const b of batches) await b()
    spent.set(k, spent.get(k)! + statOf(pid).cpuMs - c0)
  }
}
for (const [k, ms] of spent) console.log(`${k.padEnd(18)} ${(ms / (RUNS * 10)).toFixed(3)} ms of PostgreSQL CPU per ${N}-event batch, ${((ms * 1000) / (RUNS * 10 * N)).toFixed(1)} µs an event`)
await client.end()
await rep.store.close()
await prisma.$disconnect()
await db.drop()
