/**
 * Stamps commits for the end-to-end lag, in a process of its own so that the timestamps do not wait
 * for a busy benchmark event loop. LISTENs on `bench_m` (master) and `bench_r` (replica), whose
 * payloads are row ids sent by AFTER triggers, i.e. delivered when the writing transaction commits.
 * A tap queue bound to the same routing keys stamps when each event reached the broker (consumed
 * here, no ack), which splits the lag into master commit -> broker and broker -> replica commit.
 * IPC: { type: 'wait', ids, timeoutMs } -> { type: 'lags', lags, toBroker, toReplica, missing }
 * (ms); { type: 'reset' } -> { type: 'reset' }. Env: LAG_MASTER_URL, LAG_REPLICA_URL, LAG_TAP_KEYS.
 */
import pg from 'pg'
import { amqpConnect, EXCHANGE } from './support.js'

const master = new Map<number, number>()
const replica = new Map<number, number>()
const clients: pg.Client[] = []
for (const [url, channel, seen] of [[process.env.LAG_MASTER_URL!, 'bench_m', master], [process.env.LAG_REPLICA_URL!, 'bench_r', replica]] as const) {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  c.on('notification', (n) => {
    if (n.channel === channel && n.payload) seen.set(Number(n.payload), performance.now())
  })
  await c.query(`LISTEN ${channel}`)
  clients.push(c)
}
const broker = new Map<number, number>()
const amqp = await amqpConnect('lag-tap')
const tapCh = await amqp.createChannel()
const tap = (await tapCh.assertQueue('', { exclusive: true, autoDelete: true })).queue
for (const key of (process.env.LAG_TAP_KEYS ?? '').split(',').filter(Boolean)) await tapCh.bindQueue(tap, EXCHANGE, key)
await tapCh.consume(
  tap,
  (m) => {
    if (!m) return
    const at = performance.now()
    const pk = /"instance_pk":\s*(\d+)/.exec(m.content.toString('utf8'))
    if (pk) broker.set(Number(pk[1]), at)
  },
  { noAck: true },
)

process.on('message', async (m: { type: string; ids?: number[]; timeoutMs?: number }) => {
  if (m.type === 'reset') {
    master.clear()
    replica.clear()
    broker.clear()
    return process.send!({ type: 'reset' })
  }
  if (m.type === 'wait') {
    const ids = m.ids ?? []
    const end = Date.now() + (m.timeoutMs ?? 60_000)
    while (Date.now() < end && !ids.every((id) => replica.has(id) && master.has(id))) await new Promise((r) => setTimeout(r, 5))
    const done = ids.filter((id) => replica.has(id) && master.has(id))
    const lags = done.map((id) => replica.get(id)! - master.get(id)!)
    const tapped = done.filter((id) => broker.has(id))
    const toBroker = tapped.map((id) => broker.get(id)! - master.get(id)!)
    const toReplica = tapped.map((id) => replica.get(id)! - broker.get(id)!)
    return process.send!({ type: 'lags', lags, toBroker, toReplica, missing: ids.length - lags.length })
  }
  if (m.type === 'exit') {
    for (const c of clients) await c.end().catch(() => {})
    await amqp.close().catch(() => {})
    process.exit(0)
  }
})
process.send!({ type: 'ready' })
