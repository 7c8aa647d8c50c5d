/**
 * Operating tools at scale: bulk-dump, bulk-load, diff-master and diff-replica run as the real
 * `cqrs` bin subprocesses (dist/cli/main.js: `npm run build` first) on PostgreSQL, against raw SQL baselines measured in the same run:
 *   dump          vs COPY (SELECT row_to_json(t) FROM author t) TO STDOUT (psql), else a keyset SELECT
 *   load          vs batched INSERT ... SELECT FROM json_populate_recordset ... ON CONFLICT DO UPDATE WHERE
 *                    (the version gate), 1000 dump lines per statement, through pg; and (with psql) vs
 *                    PostgreSQL's own floor for a gated load: \copy of the table in COPY's text format
 *                    (no JSON at all) into a temporary table, then one INSERT ... ON CONFLICT DO UPDATE WHERE
 *   diff-master   vs COPY (SELECT id, cqrs_revision FROM author ORDER BY id) TO STDOUT
 *   diff-replica  vs per batch SELECT id, cqrs_revision FROM author_ref WHERE id = ANY($1), through pg
 *   diff-master --hash   vs COPY (SELECT id, cqrs_revision, md5(row_to_json(t)::text) FROM author t ORDER BY id):
 *                    the database hashing each whole row
 *   diff-replica (hash)  vs per batch SELECT id, cqrs_revision, md5(row_to_json(t)::text) ... WHERE id = ANY($1)
 * Rates are rows over the wall time of the whole command (process start included); peak RSS is the
 * subprocess's maxRSS. `--heap-cap MB` caps every command's V8 old space: at 1M rows a tool that held
 * the table would die of it, so a finished run shows the memory does not grow with the table (the
 * cap costs speed: more collections; the rates to quote are from a run without it).
 *
 *   npx tsx bench/tools.ts --rows 1000000
 */
import { spawn, spawnSync } from 'node:child_process'
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { pathToFileURL } from 'node:url'
import pg from 'pg'
import { BIN, TEST_CONFIG } from '../integration/support/cli.js'
import { createTestDatabase, type TestDatabase } from '../integration/support/databases.js'

export interface ToolBench {
  name: string
  rowsPerSec: number
  baselineRowsPerSec: number
  ratio: number
  peakRssMb: number
}

const capAt = process.argv.indexOf('--heap-cap')
const HEAP_CAP_MB = capAt > 0 ? Number(process.argv[capAt + 1]) : 0
const RSS_HOOK = `data:text/javascript,process.on('exit',()=>process.stderr.write('\\nmaxrss_kb='+process.resourceUsage().maxRSS+'\\n'))`

/** Run `cqrs <args>`; wall seconds and the child's peak RSS. */
function cqrs(args: string[], env: Record<string, string>): Promise<{ seconds: number; rssMb: number; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(process.execPath, [...(HEAP_CAP_MB ? [`--max-old-space-size=${HEAP_CAP_MB}`] : []), '--import', RSS_HOOK, BIN, ...args], { env: { ...process.env, CQRS_CONFIG: TEST_CONFIG, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => {
      const seconds = (performance.now() - t0) / 1000
      const kb = Number(/maxrss_kb=(\d+)/.exec(stderr)?.[1] ?? 0)
      if (code !== 0 && code !== 1) reject(new Error(`cqrs ${args.join(' ')} exited ${code}:\n${stderr}`))
      else resolve({ seconds, rssMb: kb / 1024, stderr, code })
    })
  })
}

const hasPsql = () => spawnSync('psql', ['--version']).status === 0

/** `COPY (...) TO STDOUT` through psql into /dev/null; seconds. */
function psqlCopy(url: string, query: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn('psql', [url, '-q', '-c', `COPY (${query}) TO STDOUT`], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.on('data', (d) => (err += d))
    child.on('close', (code) => (code === 0 ? resolve((performance.now() - t0) / 1000) : reject(new Error(err))))
  })
}

async function keysetSelect(url: string, select: string, table: string, batch = 5000): Promise<number> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  const t0 = performance.now()
  let last = -2147483648
  for (;;) {
    const r = await c.query(`SELECT ${select} AS j, id FROM ${table} t WHERE id > $1 ORDER BY id LIMIT ${batch}`, [last])
    if (!r.rows.length) break
    last = r.rows[r.rows.length - 1].id
  }
  await c.end()
  return (performance.now() - t0) / 1000
}

/** The raw SQL load: dump lines (keyed by column) 1000 at a time into a version-gated upsert. */
async function rawLoad(url: string, file: string): Promise<number> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  const cols = ['id', 'name', 'birth_date', 'rating', 'balance', 'last_seen', 'is_active', 'profile', 'nickname', 'external_id', 'cqrs_revision', 'cqrs_updated']
  const set = cols.slice(1).map((k) => `${k} = EXCLUDED.${k}`).join(', ')
  const sql = `INSERT INTO author_ref AS t (${cols.join(', ')}) SELECT ${cols.join(', ')} FROM json_populate_recordset(NULL::author_ref, $1::json) ON CONFLICT (id) DO UPDATE SET ${set} WHERE t.cqrs_revision <= EXCLUDED.cqrs_revision`
  const t0 = performance.now()
  let batch: string[] = []
  let first = true
  const flush = async () => {
    if (batch.length) await c.query(sql, [`[${batch.join(',')}]`])
    batch = []
  }
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    if (first) {
      first = false
      continue
    }
    batch.push(line)
    if (batch.length >= 1000) await flush()
  }
  await flush()
  const seconds = (performance.now() - t0) / 1000
  await c.end()
  return seconds
}

/** The gated load at PostgreSQL's own speed: the master table in COPY format, \copy into a stage, one upsert. */
async function copyLoad(masterUrl: string, replicaUrl: string, dir: string): Promise<number> {
  const data = join(dir, 'author.copy')
  await psqlScript(masterUrl, `\\copy (SELECT id, name, birth_date, rating, balance, last_seen, is_active, profile, nickname, external_id, cqrs_revision, cqrs_updated FROM author) TO '${data}'`, dir)
  const cols = ['id', 'name', 'birth_date', 'rating', 'balance', 'last_seen', 'is_active', 'profile', 'nickname', 'external_id', 'cqrs_revision', 'cqrs_updated']
  const set = cols.slice(1).map((k) => `${k} = EXCLUDED.${k}`).join(', ')
  const script = [
    'BEGIN;',
    `CREATE TEMPORARY TABLE stage ON COMMIT DROP AS SELECT ${cols.join(', ')} FROM author_ref WITH NO DATA;`,
    `\\copy stage FROM '${data}'`,
    `INSERT INTO author_ref AS t SELECT * FROM stage ON CONFLICT (id) DO UPDATE SET ${set} WHERE t.cqrs_revision <= EXCLUDED.cqrs_revision;`,
    'COMMIT;',
  ].join('\n')
  const t0 = performance.now()
  await psqlScript(replicaUrl, script, dir)
  return (performance.now() - t0) / 1000
}

function psqlScript(url: string, script: string, dir: string): Promise<void> {
  const file = join(dir, 'script.sql')
  writeFileSync(file, script)
  return new Promise((resolve, reject) => {
    const child = spawn('psql', [url, '-q', '-v', 'ON_ERROR_STOP=1', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.on('data', (d) => (err += d))
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(err))))
  })
}

/**
 * The raw SQL diff-replica: each batch of the diff-master file looked up with one ANY($1). `hashed`:
 * the file is diff-master --hash's (a spec line; items with a hash), and each row is read whole and
 * hashed by the database (md5 of its JSON: the cost, not our hash, so only revisions are compared).
 */
async function rawDiffReplica(url: string, file: string, hashed = false): Promise<number> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  const t0 = performance.now()
  let first = true
  let drift = 0
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    if (first || line.startsWith('{')) {
      first = false
      continue
    }
    const pairs: Array<[number, number]> = JSON.parse(line)
    const select = hashed ? 'id, cqrs_revision, md5(row_to_json(t)::text) AS h' : 'id, cqrs_revision'
    const r = await c.query(`SELECT ${select} FROM author_ref t WHERE id = ANY($1::int[])`, [pairs.map((p) => p[0])])
    const have = new Map(r.rows.map((x: any) => [x.id, x.cqrs_revision]))
    for (const [id, rev] of pairs) if (have.get(id) !== rev) drift++
  }
  const seconds = (performance.now() - t0) / 1000
  await c.end()
  if (drift) throw new Error(`baseline diff-replica found ${drift} drifted rows on an equal replica`)
  return seconds
}

/** `rows` authors with values of every column kind (NULLs, JSON, decimals), as the tools benchmarks load them. */
export async function seed(db: TestDatabase, rows: number): Promise<void> {
  await db.exec(`INSERT INTO author (id, name, birth_date, rating, balance, last_seen, is_active, profile, nickname, external_id, cqrs_revision, cqrs_updated)
    SELECT g, 'Author ' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE DATE '1950-01-01' + (g % 20000) END, g % 1000, (g % 100000) / 100.0,
      now() - (g || ' seconds')::interval, g % 2 = 0,
      CASE WHEN g % 4 = 0 THEN NULL ELSE jsonb_build_object('tags', jsonb_build_array('a', 'b'), 'score', g % 7) END,
      CASE WHEN g % 5 = 0 THEN NULL ELSE 'nick-' || g END, md5(g::text), g % 4, now()
    FROM generate_series(1, ${rows}) g`)
  await db.exec('ANALYZE author')
}

export async function benchTools(opts: { rows: number; dialect: 'postgresql' }): Promise<ToolBench[]> {
  const { rows } = opts
  const [master, replica] = await Promise.all([createTestDatabase(opts.dialect, 'btm'), createTestDatabase(opts.dialect, 'btr')])
  const dir = mkdtempSync(join(tmpdir(), 'cqrs-bench-tools-'))
  const env = { CQRS_TEST_DIALECT: opts.dialect, CQRS_MASTER_URL: master.url, CQRS_REPLICA_URL: replica.url, CQRS_AUTHOR_KEYS: 'column', CQRS_QUEUE: 'bench_tools_unused', CQRS_ID_SUFFIX: '' }
  const dump = join(dir, 'author.dump')
  const diff = join(dir, 'author.diff')
  const out: ToolBench[] = []
  const row = (name: string, seconds: number, baselineSeconds: number, rssMb: number) => {
    const rowsPerSec = Math.round(rows / seconds)
    const baselineRowsPerSec = Math.round(rows / baselineSeconds)
    out.push({ name, rowsPerSec, baselineRowsPerSec, ratio: Number((rowsPerSec / baselineRowsPerSec).toFixed(2)), peakRssMb: Math.round(rssMb) })
  }
  try {
    await seed(master, rows)
    const psql = hasPsql()

    const d = await cqrs(['bulk-dump', '--cqrs-id', 'author', '-o', dump], env)
    const dBase = psql ? await psqlCopy(master.url, 'SELECT row_to_json(t) FROM author t') : await keysetSelect(master.url, 'row_to_json(t)::text', 'author')
    row('bulk-dump', d.seconds, dBase, d.rssMb)

    const lBase = await rawLoad(replica.url, dump)
    await replica.exec('TRUNCATE author_ref')
    const l = await cqrs(['bulk-load', '-i', dump], env)
    row('bulk-load', l.seconds, lBase, l.rssMb)
    if (psql) {
      await replica.exec('TRUNCATE author_ref')
      row('bulk-load (vs COPY)', l.seconds, await copyLoad(master.url, replica.url, dir), l.rssMb)
    }

    const m = await cqrs(['diff-master', '--cqrs-id', 'author', '-o', diff], env)
    const mBase = psql ? await psqlCopy(master.url, 'SELECT id, cqrs_revision FROM author ORDER BY id') : await keysetSelect(master.url, 'json_build_array(id, cqrs_revision)::text', 'author')
    row('diff-master', m.seconds, mBase, m.rssMb)

    const r = await cqrs(['diff-replica', '-i', diff, '-o', join(dir, 'drift')], env)
    if (r.code !== 0) throw new Error(`diff-replica found drift after a full load:\n${r.stderr}`)
    const rBase = await rawDiffReplica(replica.url, diff)
    row('diff-replica', r.seconds, rBase, r.rssMb)

    // The value-level diff: every row read whole and hashed, on both sides.
    const hashed = join(dir, 'author.hashed.diff')
    const hm = await cqrs(['diff-master', '--cqrs-id', 'author', '--hash', '-o', hashed], env)
    const hashSql = 'SELECT id, cqrs_revision, md5(row_to_json(t)::text) FROM author t ORDER BY id'
    const hmBase = psql ? await psqlCopy(master.url, hashSql) : await keysetSelect(master.url, 'json_build_array(id, cqrs_revision, md5(row_to_json(t)::text))::text', 'author')
    row('diff-master --hash', hm.seconds, hmBase, hm.rssMb)
    const hr = await cqrs(['diff-replica', '-i', hashed, '-o', join(dir, 'hashed.drift')], env)
    if (hr.code !== 0) throw new Error(`diff-replica found drift in values after a full load:\n${hr.stderr}`)
    row('diff-replica (hash)', hr.seconds, await rawDiffReplica(replica.url, hashed, true), hr.rssMb)
  } finally {
    rmSync(dir, { recursive: true, force: true })
    await Promise.allSettled([master.drop(), replica.drop()])
  }
  return out
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--rows')
  const rows = i > 0 ? Number(process.argv[i + 1]) : 1_000_000
  const results = await benchTools({ rows, dialect: 'postgresql' })
  console.log(`cqrs tools on PostgreSQL, ${rows.toLocaleString('en-US')} rows (rates over whole-command wall time${HEAP_CAP_MB ? `; V8 heap capped at ${HEAP_CAP_MB} MB` : ''})`)
  console.log('tool                 rows/s   baseline rows/s   ratio   peak RSS MB')
  for (const r of results) console.log(`${r.name.padEnd(20)} ${String(r.rowsPerSec).padStart(7)}   ${String(r.baselineRowsPerSec).padStart(15)}   ${r.ratio.toFixed(2).padStart(5)}   ${String(r.peakRssMb).padStart(11)}`)
}
