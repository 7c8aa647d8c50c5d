/**
 * Helpers for the operating-tools tests: real `cqrs` bin processes (dist/cli/main.js) (alone and in shell pipelines) on a
 * master and a replica database of their own, RabbitMQ names unique to the test, and row comparison.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import amqp from 'amqplib'
import { topologyPlan } from '../../src/transport/rabbitmq/index.js'
import { BIN, TEST_CONFIG, type CliResult } from '../support/cli.js'
import { AMQP_URL, createTestDatabase, ROOT, type Dialect, type TestDatabase } from '../support/databases.js'

export interface Stage {
  dialect: Dialect
  master: TestDatabase
  replica: TestDatabase
  /** Appended to every cqrs_id of the test config. */
  suffix: string
  queue: string
  env: Record<string, string>
  /** `cqrs` as a shell word, for pipelines. */
  sh(command: string, input?: string): Promise<CliResult>
  drop(): Promise<void>
}

/** Two fresh databases and broker names no other test uses. */
export async function stage(dialect: Dialect, suffix = `_${randomBytes(4).toString('hex')}`): Promise<Stage> {
  const [master, replica] = await Promise.all([createTestDatabase(dialect, 'tm'), createTestDatabase(dialect, 'tr')])
  const queue = `tools_${randomBytes(5).toString('hex')}`
  const env = {
    CQRS_CONFIG: TEST_CONFIG,
    CQRS_TEST_DIALECT: dialect,
    CQRS_MASTER_URL: master.url,
    CQRS_REPLICA_URL: replica.url,
    CQRS_QUEUE: queue,
    CQRS_ID_SUFFIX: suffix,
    AMQP_URL,
  }
  return {
    dialect,
    master,
    replica,
    suffix,
    queue,
    env,
    sh: (command, input) => shell(command, env, input),
    async drop() {
      await Promise.allSettled([master.drop(), replica.drop(), deleteTopology(queue, [`author${suffix}`, `book${suffix}`, `tag${suffix}`, `setting${suffix}`, `ledger${suffix}`])])
    },
  }
}

/** Run a shell command line in which `cqrs` is the real, built cqrs bin. */
export function shell(command: string, env: Record<string, string>, input?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', `cqrs() { "${process.execPath}" "${BIN}" "$@"; }\n${command}`], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
    child.stdin.end(input ?? '')
  })
}

/** Delete the queues `cqrs consume` declared for `queue`. */
export async function deleteTopology(queue: string, cqrsIds: string[]): Promise<void> {
  const conn = await amqp.connect(AMQP_URL)
  try {
    const ch = await conn.createChannel()
    ch.on('error', () => {})
    for (const q of topologyPlan({ queue, cqrsIds, retryDelaysMs: [200, 400] }).queues) await ch.deleteQueue(q.name).catch(() => {})
    await ch.close().catch(() => {})
  } finally {
    await conn.close().catch(() => {})
  }
}

/** A queue of the test's own bound to `routingKey`, read with basic.get until `n` messages came. */
export async function collectQueue(routingKey: string) {
  const conn = await amqp.connect(AMQP_URL)
  const ch = await conn.createChannel()
  await ch.assertExchange('cqrs', 'topic', { durable: true })
  const { queue } = await ch.assertQueue('', { exclusive: true })
  await ch.bindQueue(queue, 'cqrs', routingKey)
  const got: Array<{ routingKey: string; body: string }> = []
  return {
    async take(n: number, timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs
      while (got.length < n) {
        const m = await ch.get(queue, { noAck: true })
        if (m) got.push({ routingKey: m.fields.routingKey, body: m.content.toString('utf8') })
        else if (Date.now() > until) throw new Error(`only ${got.length} of ${n} messages on ${routingKey}`)
        else await new Promise((r) => setTimeout(r, 50))
      }
      return got
    },
    async close() {
      await conn.close().catch(() => {})
    },
  }
}

/** Poll `check` until it returns true (a condition, not a fixed sleep); fails with `what` after the timeout. */
export async function until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** A row made comparable across databases: decimals, dates and bigints as strings, JSON as it is. */
export function plain(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(row)) {
    if (v instanceof Date) out[k] = v.toISOString()
    else if (typeof v === 'bigint') out[k] = v.toString()
    else if (v && typeof v === 'object' && 'toFixed' in v && typeof (v as any).toFixed === 'function') out[k] = String(Number((v as any).toString()))
    else out[k] = v
  }
  return out
}
