/**
 * Where the in-process relay's time goes at a steady write rate:
 * `tsx bench/profile/relay-cycle.ts [writes/s] [seconds]`. Prisma creates of authors (16 in flight at
 * most) on PostgreSQL through the default setup, its events published into a durable queue that a
 * consumer in another process drains (it acks each message after ACK_DELAY ms, 0 by default), so the
 * broker confirms as it would in production. Prints, per batch, how long the relay took from the last
 * kick (a commit it saw) to its claim, the claim's round trip, writing the messages to the channel,
 * the broker's confirms, and the claim's DELETE and COMMIT (bench/relay-timing.ts). HOLD=1 keeps a
 * snapshot open meanwhile, WINDOWS=n times n windows of that many seconds. CQRS_RELAY_GATHER_MS sets the relay's gatherMs.
 */
import { fork } from 'node:child_process'
import pg from 'pg'
import { cqrsMaster, installCaptureTriggers, rabbitmq, silentLogger } from '../package.js'
import { timeRelay } from '../relay-timing.js'
import { AMQP_URL, amqpConnect, authorData, createTestDatabase, declareSink, deleteQueues, RELAY_GATHER_MS, steady, uniqueSuffix } from '../support.js'

if (process.argv[2] === 'consumer') {
  const conn = await amqpConnect('relay-cycle-consumer')
  const ch = await conn.createChannel()
  await ch.prefetch(1000)
  const delay = Number(process.env.ACK_DELAY ?? 0)
  await ch.consume(process.argv[3], (m) => void (m && (delay ? setTimeout(() => ch.ack(m), delay) : ch.ack(m))))
  process.send!('ready')
} else {
  const [rateArg = '1000', secondsArg = '5'] = process.argv.slice(2)
  const master = await createTestDatabase('postgresql', 'rcyc')
  const cqrsId = `author_${uniqueSuffix()}`
  const models = { author: { cqrsId } }
  const sink = `bench_rcyc_${cqrsId}`
  const conn = await amqpConnect('relay-cycle')
  await declareSink(conn, sink, [cqrsId])
  const child = fork(new URL(import.meta.url).pathname, ['consumer', sink], { execArgv: ['--import', 'tsx'] })
  try {
    await new Promise((r) => child.once('message', r))
    const base = await master.client({ poolSize: 16 })
    await installCaptureTriggers(base, { models })
    const client: any = base.$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), relay: { gatherMs: RELAY_GATHER_MS }, logger: silentLogger, models }))
    // The relay's internals, timed from outside: its kick, its store's claim and its transport's send.
    const relay = client.$cqrs.relay
    const timing = timeRelay(relay)
    const write = async (i: number) => void (await client.author.create({ data: authorData(i) }))
    await steady(Number(rateArg), 2000, 16, write) // warm up
    // HOLD=1: a session holds a REPEATABLE READ snapshot meanwhile (a report, a dump), so the rows the
    // relay deletes stay in the outbox's index; WINDOWS=n prints the cycle for each of n windows.
    const holder = process.env.HOLD === '1' ? new pg.Client({ connectionString: master.url }) : null
    if (holder) {
      await holder.connect()
      await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
      await holder.query('SELECT count(*) FROM cqrs_outbox')
    }
    const windows = Number(process.env.WINDOWS ?? 1)
    for (let w = 1; w <= windows; w++) {
      timing.reset()
      const b0 = { ...relay.stats }
      await steady(Number(rateArg), Number(secondsArg) * 1000, 16, write)
      const batches = relay.stats.batches - b0.batches
      console.log(`relay at ${rateArg} writes/s${windows > 1 ? `, window ${w}/${windows}` : ''}${holder ? ', a snapshot held' : ''}: ${batches} batches of ${((relay.stats.published - b0.published) / batches).toFixed(1)} events; ${timing.summary()}`)
    }
    await holder?.end()
    await client.$cqrs.flush()
    await client.$cqrs.close()
    await base.$disconnect()
  } finally {
    child.kill()
    await deleteQueues([sink])
    await conn.close()
    await master.drop()
  }
}
