/**
 * What the benchmarks share: the run context, the measurement record, test databases, unique names,
 * author events shaped exactly like the master's, raw amqplib publishing with a confirm window, raw
 * batched upserts per dialect (the replica baseline), queue clean-up and the CLI subprocess.
 */
import { randomBytes } from 'node:crypto'
import { type ChildProcess, spawn } from 'node:child_process'
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib'
import { resolveMasterOptions } from '../src/config/master-options.js'
import { encodeMessage } from '../src/core/message.js'
import { coalesceWrites } from '../src/transport/rabbitmq/coalesce-writes.js'
import { AMQP_URL, createTestDatabase, type Dialect, mariadbConfig, ROOT, type TestDatabase } from '../integration/support/databases.js'
import { spawnCqrs, stop as stopChild, waitForStderr } from '../integration/support/cli.js'
import { cqrsMessage } from '../integration/support/messages.js'

export { AMQP_URL, createTestDatabase, type Dialect, type TestDatabase }

/**
 * The in-process relay's `relay.gatherMs` for the benchmarks that run one, from CQRS_RELAY_GATHER_MS
 * (the variable `cqrs relay` reads), to compare a setting with the default; undefined: the default.
 */
export const RELAY_GATHER_MS = process.env.CQRS_RELAY_GATHER_MS ? Number(process.env.CQRS_RELAY_GATHER_MS) : undefined
export const EXCHANGE = 'cqrs'

export interface BenchContext {
  quick: boolean
  runs: number
  dialects: Dialect[]
  /** Progress on stderr. */
  log(message: string): void
}

/** What a goal compares: the ratio cqrs-sync / baseline, or the cqrs-sync figure itself. */
export type Goal =
  | { kind: 'ratio>='; value: number; text: string }
  | { kind: 'ratio<='; value: number; text: string }
  | { kind: '>='; value: number; text: string }
  | { kind: '<='; value: number; text: string }

/** One metric of one benchmark on one dialect: a value per run for cqrs-sync and for its baseline. */
export interface Measurement {
  benchmark: string
  dialect: string
  metric: string
  unit: string
  /** One figure per run. */
  cqrs: number[]
  /** One figure per run of the baseline, paired with `cqrs` by index; empty when there is none. */
  baseline: number[]
  /** What the baseline is, for the report. */
  baselineLabel?: string
  goal?: Goal
  /** Per-run details (sizes, counts, timings) kept in results.json. */
  details?: unknown[]
  note?: string
}

export type Benchmark = (ctx: BenchContext) => Promise<Measurement[]>

/** A fresh lowercase suffix for cqrs_ids and queue names no other test or run uses. */
/**
 * The capture mode a master gets without a `capture` option (what the README's quick start sets up).
 * Rows measuring that setup say `default` in their metric name, so they can be found whatever the
 * mode is called.
 */
export const DEFAULT_CAPTURE: 'extension' | 'trigger' = resolveMasterOptions({ transport: { name: 'none', publish: async () => {} }, models: { a: { cqrsId: 'a' } } }, 'bench').capture

/** The metric-name tag of a capture mode: `default, capture: extension` for the default one. */
export const captureTag = (mode: 'extension' | 'trigger'): string => `${mode === DEFAULT_CAPTURE ? 'default, ' : ''}capture: ${mode}`

export const uniqueSuffix = (): string => `b${randomBytes(4).toString('hex')}`

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/**
 * Issue op(i) at `perSec` for `durationMs` (open loop: what is due is issued even when earlier ops
 * are slow, up to `maxInFlight` at once). Resolves once every op finished.
 */
export async function steady(perSec: number, durationMs: number, maxInFlight: number, op: (i: number) => Promise<void>): Promise<{ issued: number; issueMs: number; late: number }> {
  const t0 = performance.now()
  let i = 0
  let inFlight = 0
  let late = 0
  const all: Promise<void>[] = []
  for (;;) {
    const elapsed = performance.now() - t0
    if (elapsed >= durationMs) break
    const due = Math.floor((elapsed * perSec) / 1000)
    if (due - i > maxInFlight) late++
    while (i < due && inFlight < maxInFlight) {
      inFlight++
      all.push(op(i++).finally(() => inFlight--))
    }
    await sleep(1)
  }
  const issueMs = performance.now() - t0
  await Promise.all(all)
  return { issued: i, issueMs, late }
}

/** Poll `check` every `everyMs` until it returns true; throws after `timeoutMs` with `what`. */
export async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 120_000, everyMs = 5): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

// ---- author events as the master writes them ---------------------------------------------------

/** `2024-05-01 10:00:00.123000+00:00`: how the codec writes DateTime on the wire. */
export const wireDateTime = (d: Date) => `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 23)}000+00:00`

/** Scalar data of an author row, as a master create would write it. */
export function authorData(i: number) {
  return {
    name: `Author ${i}`,
    birthDate: new Date(Date.UTC(1950 + (i % 50), i % 12, 1 + (i % 28))),
    rating: i % 100,
    balance: `${i % 1000}.25`,
    lastSeen: new Date(Date.UTC(2024, 0, 1, 0, 0, i % 60)),
    isActive: i % 2 === 0,
    profile: { tags: ['bench', `t${i % 10}`], level: i % 5 },
    nickname: `nick${i}`,
    externalId: `ext-${i}`,
  }
}

/** A SAVE of author `id` at `revision`, byte for byte the shape the master's capture produces. */
export function authorEventBody(cqrsId: string, id: number, revision: number, updated = new Date()): string {
  const d = authorData(id)
  return encodeMessage(
    cqrsMessage('SAVE', cqrsId, {
      cqrs_revision: revision,
      cqrs_updated: wireDateTime(updated),
      id,
      name: d.name,
      birthDate: d.birthDate.toISOString().slice(0, 10),
      rating: d.rating,
      balance: Number(d.balance),
      lastSeen: wireDateTime(d.lastSeen),
      isActive: d.isActive,
      profile: d.profile,
      nickname: d.nickname,
      externalId: d.externalId,
    }),
  )
}

// ---- RabbitMQ, raw -------------------------------------------------------------------------------

export async function amqpConnect(name: string): Promise<ChannelModel> {
  // The rabbitmq transport's socket settings (Nagle off, each turn's messages in one write), so the
  // baselines get the best of both: with Nagle on, amqplib's default, acks and confirms wait for TCP's
  // delayed acknowledgement; with it off alone, every message is a TCP segment of its own.
  const conn = await amqp.connect(AMQP_URL, { clientProperties: { connection_name: `cqrs-bench-${name}-${process.pid}` }, noDelay: true })
  coalesceWrites(conn, { always: true })
  return conn
}

/** Declare a durable queue bound to `routingKeys` on the cqrs exchange (so published messages are stored). */
export async function declareSink(conn: ChannelModel, queue: string, routingKeys: string[]): Promise<void> {
  const ch = await conn.createChannel()
  await ch.assertExchange(EXCHANGE, 'topic', { durable: true })
  await ch.assertQueue(queue, { durable: true })
  for (const k of routingKeys) await ch.bindQueue(queue, EXCHANGE, k)
  await ch.close()
}

export async function messageCount(conn: ChannelModel, queue: string): Promise<number> {
  const ch = await conn.createChannel()
  try {
    return (await ch.checkQueue(queue)).messageCount
  } finally {
    await ch.close().catch(() => {})
  }
}

export async function purgeQueue(conn: ChannelModel, queue: string): Promise<void> {
  const ch = await conn.createChannel()
  await ch.purgeQueue(queue)
  await ch.close()
}

/** Delete queues (missing ones are fine), each on its own channel since a failure closes it. */
export async function deleteQueues(queues: string[]): Promise<void> {
  if (!queues.length) return
  const conn = await amqpConnect('cleanup')
  try {
    for (const q of queues) {
      const ch = await conn.createChannel()
      ch.on('error', () => {})
      await ch.deleteQueue(q).catch(() => {})
      await ch.close().catch(() => {})
    }
  } finally {
    await conn.close().catch(() => {})
  }
}

/** The queues a replica queue `q` owns: itself, its delay queues and its dead-letter queue. */
export const replicaQueues = (q: string, delaysMs: number[]) => [q, `dead_letter_${q}`, ...delaysMs.map((ms) => `${q}.retry.${ms}`)]

/**
 * Raw amqplib publishing with publisher confirms and at most `window` unconfirmed messages,
 * persistent, to the cqrs exchange: the baseline for the relay and the way backlogs are filled.
 */
export async function publishRaw(ch: ConfirmChannel, messages: Array<{ routingKey: string; body: Buffer; messageId?: string }>, window = 1000, exchange = EXCHANGE): Promise<void> {
  let outstanding = 0
  let failed: unknown = null
  let wake: (() => void) | null = null
  const signal = () => {
    const w = wake
    wake = null
    w?.()
  }
  let mustDrain = false
  const onDrain = () => {
    mustDrain = false
    signal()
  }
  ch.on('drain', onDrain)
  try {
    for (const m of messages) {
      while (outstanding >= window || mustDrain) await new Promise<void>((r) => (wake = r))
      if (failed) throw failed
      outstanding++
      const ok = ch.publish(exchange, m.routingKey, m.body, { persistent: true, contentType: 'application/json', messageId: m.messageId }, (err) => {
        outstanding--
        if (err) failed = err
        signal()
      })
      if (!ok) mustDrain = true
    }
    while (outstanding > 0) await new Promise<void>((r) => (wake = r))
    if (failed) throw failed
  } finally {
    ch.off('drain', onDrain)
  }
}

// ---- raw batched upsert (the replica baseline) ----------------------------------------------------

const COLS = ['id', 'name', 'birth_date', 'rating', 'balance', 'last_seen', 'is_active', 'profile', 'nickname', 'external_id', 'cqrs_revision', 'cqrs_updated'] as const

/** A raw version-gated batch upsert into author_ref with the plain driver of each dialect. */
export interface RawApplier {
  apply(bodies: Buffer[]): Promise<void>
  close(): Promise<void>
}

const mysqlTime = (s: string | null) => (s == null ? null : s.replace('T', ' ').slice(0, 26))
const sqliteTime = (s: string | null) => (s == null ? null : new Date(s.replace(' ', 'T')).toISOString().replace('Z', '+00:00'))

/** The raw PostgreSQL applier's parameters: bodies parsed with JSON.parse, one array per column of COLS. */
export function rawColumns(bodies: Buffer[]): unknown[][] {
  const cols: unknown[][] = COLS.map(() => [])
  for (const b of bodies) {
    const d = JSON.parse(b.toString('utf8')).instance_data
    cols[0].push(d.id)
    cols[1].push(d.name)
    cols[2].push(d.birthDate)
    cols[3].push(d.rating)
    cols[4].push(d.balance)
    cols[5].push(d.lastSeen)
    cols[6].push(d.isActive)
    cols[7].push(d.profile == null ? null : JSON.stringify(d.profile))
    cols[8].push(d.nickname)
    cols[9].push(d.externalId)
    cols[10].push(d.cqrs_revision)
    cols[11].push(d.cqrs_updated)
  }
  return cols
}

export async function rawApplier(db: TestDatabase): Promise<RawApplier> {
  if (db.dialect === 'postgresql') {
    const pg = (await import('pg')).default
    const client = new pg.Client({ connectionString: db.url })
    await client.connect()
    const set = COLS.slice(1).map((c) => `${c} = EXCLUDED.${c}`).join(', ')
    const sql =
      `INSERT INTO author_ref AS t (${COLS.join(', ')}) SELECT * FROM unnest($1::int[], $2::text[], $3::date[], $4::int[], $5::numeric[], $6::timestamptz[], $7::bool[], $8::jsonb[], $9::text[], $10::text[], $11::int[], $12::timestamptz[]) ` +
      `ON CONFLICT (id) DO UPDATE SET ${set} WHERE t.cqrs_revision < EXCLUDED.cqrs_revision`
    return {
      async apply(bodies) {
        await client.query({ name: 'bench_upsert', text: sql, values: rawColumns(bodies) })
      },
      close: () => client.end(),
    }
  }
  if (db.dialect === 'mysql') {
    const mariadb = (await import('mariadb')).default
    const conn = await mariadb.createConnection(mariadbConfig(db.url))
    const set = COLS.slice(1).map((c) => `${c} = IF(cqrs_revision < VALUES(cqrs_revision), VALUES(${c}), ${c})`)
    // cqrs_revision last: assignments see the earlier ones.
    const setSql = [...set.filter((s) => !s.startsWith('cqrs_revision')), set.find((s) => s.startsWith('cqrs_revision'))].join(', ')
    return {
      async apply(bodies) {
        const params: unknown[] = []
        for (const b of bodies) {
          const d = JSON.parse(b.toString('utf8')).instance_data
          params.push(d.id, d.name, d.birthDate, d.rating, d.balance, mysqlTime(d.lastSeen), d.isActive ? 1 : 0, d.profile == null ? null : JSON.stringify(d.profile), d.nickname, d.externalId, d.cqrs_revision, mysqlTime(d.cqrs_updated))
        }
        const tuple = `(${COLS.map(() => '?').join(', ')})`
        await conn.query(`INSERT INTO author_ref (${COLS.join(', ')}) VALUES ${bodies.map(() => tuple).join(', ')} ON DUPLICATE KEY UPDATE ${setSql}`, params)
      },
      close: () => conn.end(),
    }
  }
  const Database = (await import('better-sqlite3')).default
  const sdb = new Database(db.url.replace(/^file:/, ''))
  sdb.pragma('busy_timeout = 10000')
  const set = COLS.slice(1).map((c) => `${c} = excluded.${c}`).join(', ')
  const stmt = sdb.prepare(`INSERT INTO author_ref (${COLS.join(', ')}) VALUES (${COLS.map(() => '?').join(', ')}) ON CONFLICT (id) DO UPDATE SET ${set} WHERE author_ref.cqrs_revision < excluded.cqrs_revision`)
  const tx = sdb.transaction((rows: unknown[][]) => {
    for (const r of rows) stmt.run(r)
  })
  return {
    async apply(bodies) {
      const rows = bodies.map((b) => {
        const d = JSON.parse(b.toString('utf8')).instance_data
        return [d.id, d.name, d.birthDate, d.rating, d.balance, sqliteTime(d.lastSeen), d.isActive ? 1 : 0, d.profile == null ? null : JSON.stringify(d.profile), d.nickname, d.externalId, d.cqrs_revision, sqliteTime(d.cqrs_updated)]
      })
      tx(rows)
    },
    close: async () => void sdb.close(),
  }
}

/**
 * Raw consume of `queue` with `prefetch`, applying greedy batches (whatever arrived while the last
 * batch ran, at most `prefetch`) with `applier`, acking each batch with multiple=true.
 * Resolves with a stop function once consuming.
 */
export async function rawConsume(conn: ChannelModel, queue: string, prefetch: number, applier: RawApplier, onApplied: (n: number) => void): Promise<() => Promise<void>> {
  const ch = await conn.createChannel()
  await ch.prefetch(prefetch)
  let buffer: amqp.ConsumeMessage[] = []
  let running: Promise<void> | null = null
  const pump = async () => {
    while (buffer.length) {
      const batch = buffer.length > prefetch ? buffer.splice(0, prefetch) : buffer
      if (batch === buffer) buffer = []
      await applier.apply(batch.map((m) => m.content))
      ch.ack(batch[batch.length - 1], true)
      onApplied(batch.length)
    }
    running = null
  }
  const { consumerTag } = await ch.consume(queue, (m) => {
    if (!m) return
    buffer.push(m)
    running ??= new Promise<void>((r) => setImmediate(r)).then(pump)
  })
  return async () => {
    await ch.cancel(consumerTag)
    await running
    await ch.close().catch(() => {})
  }
}

// ---- databases -------------------------------------------------------------------------------------

/** Row count of `table` where `where` holds, with the plain driver. */
export async function countRows(db: TestDatabase, table: string, where = 'TRUE'): Promise<number> {
  const w = db.dialect === 'sqlite' ? where.replace(/\bTRUE\b/g, '1') : where
  const rows = await db.query<{ n: number | string | bigint }>(`SELECT COUNT(*) AS n FROM ${table} WHERE ${w}`)
  return Number(rows[0].n)
}

// ---- the CLI ---------------------------------------------------------------------------------------

export interface CliWorkers {
  child: ChildProcess
  stderr: () => string
  stop(): Promise<void>
}

/**
 * Start `cqrs consume -w <workers>` on the integration test config (env-driven) and wait until every
 * worker said it is ready.
 */
export function startConsume(workers: number, env: Record<string, string>, extraArgs: string[] = []): Promise<CliWorkers> {
  const pattern = workers > 1 ? new RegExp(`(ready[\\s\\S]*){${workers}}`) : /ready/
  return startCli(['consume', '-w', String(workers), ...extraArgs], env, pattern)
}

/** Start `cqrs <args>` on the integration test config and wait until stderr matches `ready`. */
export async function startCli(args: string[], env: Record<string, string>, ready: RegExp): Promise<CliWorkers> {
  const child = spawnCqrs(args, env)
  let seen = ''
  child.stderr!.on('data', (d) => (seen += d))
  child.stdout!.resume()
  await waitForStderr(child, ready, 60_000)
  return {
    child,
    stderr: () => seen,
    async stop() {
      await stopChild(child, 'SIGTERM')
    },
  }
}

/**
 * Start bench/raw-consumer.ts (the raw replica baseline) as a process of its own, as `cqrs consume`
 * runs, and wait for its "ready". Env: RAW_DIALECT, RAW_DB_URL, RAW_QUEUE, RAW_KEYS, RAW_PREFETCH.
 */
export async function startRawConsumer(env: Record<string, string>): Promise<CliWorkers> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/raw-consumer.ts'], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
  let seen = ''
  child.stderr!.on('data', (d) => (seen += d))
  await waitForStderr(child, /ready/, 60_000)
  return {
    child,
    stderr: () => seen,
    async stop() {
      await stopChild(child, 'SIGTERM')
    },
  }
}

/**
 * PostgreSQL: an AFTER trigger on `table` that sends each written row's id on `channel` (NOTIFY,
 * delivered at commit): how the lag benchmarks stamp commits.
 */
export const notifyTrigger = (table: string, channel: string) => `
CREATE OR REPLACE FUNCTION bench_notify() RETURNS trigger AS $$ BEGIN PERFORM pg_notify(TG_ARGV[0], NEW.id::text); RETURN NULL; END $$ LANGUAGE plpgsql;
CREATE TRIGGER bench_notify_${table} AFTER INSERT OR UPDATE ON ${table} FOR EACH ROW EXECUTE FUNCTION bench_notify('${channel}');`
