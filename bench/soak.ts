/**
 * Soak: does memory level off? Two long runs on PostgreSQL and the local RabbitMQ, each printing the
 * resident set size (RSS, from /proc) as JSON lines on stdout, at the start, after every round, and
 * at the end (`"at": "start" | "round" | "middle" | "end"`); progress goes to stderr.
 *
 *   npx tsx bench/soak.ts                          # both parts, 1M events and 1M writes
 *   npx tsx bench/soak.ts --events 100000 --writes 0
 *   npx tsx bench/soak.ts --part master --writes 200000
 *   npx tsx bench/soak.ts --part master --capture extension # 1M writes with extension capture (default: trigger, the library's default)
 *
 * - consume: `cqrs consume -w 2` (a subprocess, the integration test config) applies `--events` SAVE
 *   events published straight to its queue, in rounds of `--pool` ids (default 100,000) with the
 *   revision rising each round, so the replica table stays at `--pool` rows however long it runs.
 *   RSS of the supervisor and of each worker, read once a round is applied.
 * - master: this process writes `--writes` updates (4 at a time) over `--pool` rows through
 *   `cqrsMaster()` with its in-process relay; the events go to a queue capped at 10,000 messages.
 *   RSS of this process (writer and relay together) and the outbox backlog, once a round is written.
 *
 * Run it on a quiet machine; it takes a long time at full size (about 1M / the apply rate).
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { cqrsMaster, installCaptureTriggers, rabbitmq, silentLogger } from './package.js'
import { AMQP_URL, amqpConnect, authorData, authorEventBody, createTestDatabase, deleteQueues, EXCHANGE, publishRaw, replicaQueues, startConsume, uniqueSuffix, until, type CliWorkers, type TestDatabase } from './support.js'

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    writes: { type: 'string', default: '1000000' },
    pool: { type: 'string', default: '100000' },
    part: { type: 'string', default: 'both' },
    capture: { type: 'string', default: 'trigger' },
  },
})
const EVENTS = Number(args.events)
const WRITES = Number(args.writes)
const POOL = Number(args.pool)
for (const [name, n] of [['--events', EVENTS], ['--writes', WRITES], ['--pool', POOL]] as const)
  if (!Number.isInteger(n) || n < 0 || (name === '--pool' && n < 1)) throw new Error(`${name} must be a whole number${name === '--pool' ? ' above 0' : ''}; got ${JSON.stringify(args[name.slice(2) as 'events'])}`)
if (!['both', 'consume', 'master'].includes(args.part!)) throw new Error(`--part must be both, consume or master; got ${args.part}`)
if (!['extension', 'trigger'].includes(args.capture!)) throw new Error(`--capture must be extension or trigger; got ${args.capture}`)
const CAPTURE = args.capture as 'extension' | 'trigger'

/** Resident set size of a process in MB, or null when it is gone. */
function rssMb(pid: number): number | null {
  try {
    const kb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
    return Math.round((kb / 1024) * 10) / 10
  } catch {
    return null
  }
}
const line = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...o })}\n`)
const log = (s: string) => process.stderr.write(`soak: ${s}\n`)
/** Labels the samples a reader wants first: start, the one at half way, the end. */
const label = (done: number, total: number, prevDone: number) => (done >= total ? 'end' : prevDone < total / 2 && done >= total / 2 ? 'middle' : 'round')

async function soakConsume(): Promise<void> {
  const replica = await createTestDatabase('postgresql', 'soakr')
  const suffix = `_${uniqueSuffix()}`
  const queue = `soak${suffix}`
  const cqrsId = `author${suffix}`
  let cli: CliWorkers | undefined
  try {
    cli = await startConsume(2, { CQRS_TEST_DIALECT: 'postgresql', CQRS_REPLICA_URL: replica.url, CQRS_QUEUE: queue, CQRS_ID_SUFFIX: suffix, AMQP_URL })
    const pids = { supervisor: cli.child.pid!, ...Object.fromEntries([...cli.stderr().matchAll(/worker (\d+): ready.*\(pid (\d+)\)/g)].map((m) => [`worker${m[1]}`, Number(m[2])])) }
    const sample = (at: string, events: number) => line({ part: 'consume', at, events, rssMb: Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, rssMb(pid)])) })
    sample('start', 0)
    const conn = await amqpConnect('soak')
    const ch = await conn.createConfirmChannel()
    let sent = 0
    for (let round = 1; sent < EVENTS; round++) {
      const n = Math.min(POOL, EVENTS - sent)
      for (let from = 0; from < n; from += 10_000) {
        const ids = Array.from({ length: Math.min(10_000, n - from) }, (_, i) => from + i + 1)
        await publishRaw(ch, ids.map((id) => ({ routingKey: cqrsId, body: Buffer.from(authorEventBody(cqrsId, id, round)) })))
      }
      await until(async () => Number((await replica.query<{ n: string }>(`SELECT COUNT(*) AS n FROM author_ref WHERE cqrs_revision >= ${round}`))[0].n) >= n, `round ${round} applied`, 3_600_000, 500)
      const before = sent
      sent += n
      sample(label(sent, EVENTS, before), sent)
      log(`consume: ${sent} of ${EVENTS} events applied`)
    }
    await conn.close()
  } finally {
    await cli?.stop()
    await deleteQueues(replicaQueues(queue, [200, 400]))
    await replica.drop()
  }
}

async function soakMaster(): Promise<void> {
  const master = await createTestDatabase('postgresql', 'soakm')
  const cqrsId = `author_${uniqueSuffix()}`
  const sink = `soak_sink_${cqrsId}`
  const conn = await amqpConnect('soak-sink')
  const ch = await conn.createChannel()
  await ch.assertExchange(EXCHANGE, 'topic', { durable: true })
  // Somewhere for the events to go that never fills up: the oldest are dropped past 10,000.
  await ch.assertQueue(sink, { durable: false, arguments: { 'x-max-length': 10_000 } })
  await ch.bindQueue(sink, EXCHANGE, cqrsId)
  const base = await master.client({ poolSize: 8 })
  const models = { author: { cqrsId } }
  if (CAPTURE === 'trigger') await installCaptureTriggers(base, { models, capture: 'trigger' })
  const prisma = base.$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), logger: silentLogger, capture: CAPTURE, models }))
  try {
    const ids: number[] = []
    for (let i = 0; i < POOL; i += 1000) {
      const rows = await prisma.author.createManyAndReturn({ data: Array.from({ length: Math.min(1000, POOL - i) }, (_, k) => authorData(i + k)), select: { id: true } })
      ids.push(...rows.map((r: { id: number }) => r.id))
    }
    await prisma.$cqrs.flush()
    const backlog = async () => Number((await master.query<{ n: string }>('SELECT COUNT(*) AS n FROM cqrs_outbox'))[0].n)
    const sample = async (at: string, writes: number) => line({ part: 'master', at, writes, rssMb: { writer: rssMb(process.pid) }, heapMb: Math.round(process.memoryUsage().heapUsed / 1048576), outboxBacklog: await backlog() })
    await sample('start', 0)
    let written = 0
    while (written < WRITES) {
      const round = Math.min(POOL, WRITES - written)
      let next = 0
      await Promise.all(
        [0, 1, 2, 3].map(async () => {
          for (let i = next++; i < round; i = next++) await prisma.author.update({ where: { id: ids[i] }, data: { rating: { increment: 1 }, nickname: `w${written + i}` } })
        }),
      )
      const before = written
      written += round
      await sample(label(written, WRITES, before), written)
      log(`master: ${written} of ${WRITES} writes`)
    }
    await prisma.$cqrs.flush()
  } finally {
    await prisma.$cqrs.close()
    await ch.deleteQueue(sink).catch(() => {})
    await conn.close().catch(() => {})
    await master.drop()
  }
}

if (args.part !== 'master' && EVENTS > 0) await soakConsume()
if (args.part !== 'consume' && WRITES > 0) await soakMaster()
