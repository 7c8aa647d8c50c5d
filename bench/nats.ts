/**
 * Transports: NATS JetStream and RabbitMQ quorum queues, each next to its own floor in the same run.
 *
 * - relay through NATS: N outbox rows drained by `createRelay(prisma, nats())` (publish with
 *   JetStream acks and a message id per event), against raw `@nats-io/jetstream` publishing of the
 *   same bodies with message ids and at most 1000 acks outstanding.
 * - replica through NATS: an in-process `cqrsReplica` with `nats()` on a backlog of N author SAVEs,
 *   against a raw JetStream pull consumer (fetch 1000) applying each fetch in one batched upsert
 *   with the plain driver (`rawApplier`, the same floor as the RabbitMQ replica benchmark).
 * - RabbitMQ quorum against classic: the relay through `rabbitmq({ queueType })` into a replica
 *   queue of that type, and an in-process `cqrsReplica` draining N events from it.
 *
 * Only the first dialect (PostgreSQL by default): the broker is what is compared here.
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { cqrsReplica, createRelay, durablePlans, nats, rabbitmq, silentLogger } from './package.js'
import type { Transport } from '../src/transport/types.js'
import { authorBodies, fillOutbox } from './relay.js'
import { lockSql, truncateSql, unlockSql } from './replica.js'
import { rate } from './stats.js'
import {
  AMQP_URL,
  authorEventBody,
  type BenchContext,
  countRows,
  createTestDatabase,
  deleteQueues,
  type Measurement,
  rawApplier,
  replicaQueues,
  uniqueSuffix,
  until,
} from './support.js'

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222'
const LAYOUT = { stream: 'CQRS', retryStream: 'CQRS_RETRY', deadLetterStream: 'CQRS_DLQ', subjectPrefix: 'cqrs' }
const REVISION = 1
const RETRY_DELAYS = [1000]

export async function natsBench(ctx: BenchContext): Promise<Measurement[]> {
  const N = ctx.quick ? 2000 : 20_000
  const dialect = ctx.dialects[0] ?? 'postgresql'
  const db = await createTestDatabase(dialect, 'bna')
  const nc = await connect({ servers: NATS_URL, name: 'cqrs-bench-raw' })
  const jsm = await jetstreamManager(nc)
  const js = jetstream(nc)
  const suffix = uniqueSuffix()
  const cqrsId = `author_${suffix}`
  const queues: Array<{ queue: string; kind: 'nats' | 'rabbitmq' }> = []
  const out: Measurement[] = []
  try {
    const prisma = await db.client()
    const bodies = authorBodies(cqrsId, 1, N, REVISION)
    const events = Array.from({ length: N }, (_, k) => authorEventBody(cqrsId, k + 1, REVISION))

    // ---- relay: outbox -> NATS, and raw JetStream publishing ----------------------------------
    const natsTransport = nats({ servers: NATS_URL, logger: silentLogger })
    await natsTransport.connect() // creates the streams
    const relayNats = createRelay(prisma, natsTransport, { logger: silentLogger })
    const rawPublish = async (run: number) => {
      const window = 1000
      for (let i = 0; i < N; i += window) {
        await Promise.all(events.slice(i, i + window).map((body, k) => js.publish(`cqrs.raw_${suffix}`, body, { msgID: `raw-${suffix}-${run}-${i + k}` })))
      }
    }
    const relayFig = { cqrs: [] as number[], base: [] as number[] }
    await fillOutbox(db, cqrsId, bodies.slice(0, 200))
    await relayNats.drain(60_000) // warm-up
    await rawPublish(-1)
    for (let run = 0; run < ctx.runs; run++) {
      // Outbox ids are new on each fill, so the server's dedup does not drop a later run's events.
      await fillOutbox(db, cqrsId, bodies)
      const order = run % 2 === 0 ? ['cqrs', 'raw'] : ['raw', 'cqrs']
      for (const who of order) {
        const t0 = performance.now()
        if (who === 'cqrs') {
          const n = await relayNats.drain(300_000)
          if (n !== N) throw new Error(`relay drained ${n} events, expected ${N}`)
          relayFig.cqrs.push(rate(N, performance.now() - t0))
        } else {
          await rawPublish(run)
          relayFig.base.push(rate(N, performance.now() - t0))
        }
      }
      ctx.log(`  nats relay run ${run + 1}/${ctx.runs}: relay ${relayFig.cqrs.at(-1)!.toFixed(0)} events/s, raw JetStream publish ${relayFig.base.at(-1)!.toFixed(0)} msg/s`)
    }
    await relayNats.stop()
    out.push({
      benchmark: 'nats',
      dialect,
      metric: `relay: outbox -> NATS JetStream (${N.toLocaleString('en')} events)`,
      unit: 'events/s',
      cqrs: relayFig.cqrs,
      baseline: relayFig.base,
      baselineLabel: 'raw @nats-io/jetstream publish with msgID, 1000 acks outstanding',
      goal: { kind: 'ratio>=', value: 0.7, text: '>= 0.70x' },
    })

    // ---- replica: NATS -> author_ref, and a raw pull consumer with batched upserts ------------
    const replicaFig = { cqrs: [] as number[], base: [] as number[] }
    const publishBacklog = (routingKey: string, t: Transport, run: number) =>
      t.publish(events.map((body, k) => ({ routingKey, body, messageId: `${run}-${k}` })))
    const applier = await rawApplier(db)
    const rawDurable = `bench_raw_${suffix}`
    await jsm.consumers.add('CQRS', { durable_name: rawDurable, filter_subject: `cqrs.rawrep_${suffix}`, ack_policy: AckPolicy.All, deliver_policy: DeliverPolicy.New, max_ack_pending: 20_000 })
    const rawDrain = async (run: number): Promise<number> => {
      await publishBacklog(`rawrep_${suffix}`, natsTransport, run)
      const consumer = await js.consumers.get('CQRS', rawDurable)
      const t0 = performance.now()
      let applied = 0
      while (applied < N) {
        const batch: Buffer[] = []
        const msgs = await consumer.fetch({ max_messages: Math.min(1000, N - applied), expires: 5000 })
        let last
        for await (const m of msgs) {
          batch.push(Buffer.from(m.data))
          last = m
          if (batch.length === Math.min(1000, N - applied)) break
        }
        if (!batch.length) continue
        await applier.apply(batch)
        last!.ack() // AckPolicy.All: acks the whole fetch, as amqplib's ack(multiple) does
        applied += batch.length
      }
      return performance.now() - t0
    }
    const natsQueue = `bench_nats_${suffix}`
    queues.push({ queue: natsQueue, kind: 'nats' })
    // The replica runs throughout, as a deployed one does, and is warmed up (its connections, its
    // durables, which exist from then on: a new NATS queue reads what is published after it); like the
    // RabbitMQ in-process figure (bench/replica.ts), each run locks the table while the backlog is
    // published, so the replica holds its prefetch and waits, and the drain is timed from the unlock.
    // The raw consumer's timer likewise starts with its consumer handle in hand.
    const rep = cqrsReplica({ prisma, transport: nats({ servers: NATS_URL, logger: silentLogger }), queue: natsQueue, handlers: { [cqrsId]: { model: 'authorRef' } }, retry: { delaysMs: RETRY_DELAYS }, logger: silentLogger })
    await rep.start()
    const replicaDrain = async (run: number): Promise<number> => {
      const before = rep.stats.applied + rep.stats.skipped
      await db.exec(lockSql(dialect))
      try {
        await publishBacklog(cqrsId, natsTransport, run)
      } finally {
        await db.exec(unlockSql(dialect))
      }
      const t0 = performance.now()
      await until(() => rep.stats.applied + rep.stats.skipped >= before + N, `NATS replica to apply ${N}`, 300_000, 1)
      return performance.now() - t0
    }
    await replicaDrain(-1) // warm-up
    await db.exec(truncateSql(dialect, 'author_ref'))
    for (let run = 0; run < ctx.runs; run++) {
      const order = run % 2 === 0 ? ['cqrs', 'raw'] : ['raw', 'cqrs']
      for (const who of order) {
        const ms = who === 'cqrs' ? await replicaDrain(run) : await rawDrain(run)
        if ((await countRows(db, 'author_ref', `cqrs_revision = ${REVISION}`)) !== N) throw new Error(`${who}: author_ref does not hold ${N} rows`)
        await db.exec(truncateSql(dialect, 'author_ref'))
        ;(who === 'cqrs' ? replicaFig.cqrs : replicaFig.base).push(rate(N, ms))
      }
      ctx.log(`  nats replica run ${run + 1}/${ctx.runs}: cqrsReplica ${replicaFig.cqrs.at(-1)!.toFixed(0)}/s, raw pull + upsert ${replicaFig.base.at(-1)!.toFixed(0)}/s`)
    }
    await rep.stop()
    await applier.close()
    await jsm.consumers.delete('CQRS', rawDurable).catch(() => {})
    out.push({
      benchmark: 'nats',
      dialect,
      metric: `replica: NATS -> author_ref (${N.toLocaleString('en')} events)`,
      unit: 'events/s',
      cqrs: replicaFig.cqrs,
      baseline: replicaFig.base,
      baselineLabel: 'raw @nats-io/jetstream fetch 1000 + batched upsert',
      goal: { kind: 'ratio>=', value: 0.7, text: '>= 0.70x' },
    })
    await natsTransport.close()

    // ---- RabbitMQ: quorum against classic queues ---------------------------------------------
    for (const step of ['relay', 'replica'] as const) {
      const fig = { quorum: [] as number[], classic: [] as number[] }
      for (let run = 0; run < ctx.runs; run++) {
        for (const queueType of run % 2 === 0 ? (['quorum', 'classic'] as const) : (['classic', 'quorum'] as const)) {
          const queue = `bench_${queueType}_${suffix}`
          if (!queues.some((q) => q.queue === queue)) queues.push({ queue, kind: 'rabbitmq' })
          const rabbitCqrsId = `${cqrsId}_${queueType}`
          const transport = () => rabbitmq({ url: AMQP_URL, logger: silentLogger, queueType })
          const rep = cqrsReplica({ prisma, transport: transport(), queue, handlers: { [rabbitCqrsId]: { model: 'authorRef' } }, retry: { delaysMs: RETRY_DELAYS }, logger: silentLogger })
          if (run === 0) {
            await rep.start() // declares the queue and its delay and dead-letter queues
            await rep.stop()
          }
          const t = transport()
          const relayRabbit = createRelay(prisma, t, { logger: silentLogger })
          await fillOutbox(db, rabbitCqrsId, authorBodies(rabbitCqrsId, 1, N, REVISION))
          let t0 = performance.now()
          await relayRabbit.drain(300_000)
          if (step === 'relay') fig[queueType].push(rate(N, performance.now() - t0))
          await relayRabbit.stop()
          await t.close()
          const again = cqrsReplica({ prisma, transport: transport(), queue, handlers: { [rabbitCqrsId]: { model: 'authorRef' } }, retry: { delaysMs: RETRY_DELAYS }, logger: silentLogger })
          t0 = performance.now()
          await again.start()
          await until(() => again.stats.applied + again.stats.skipped >= N, `${queueType} replica to apply ${N}`, 300_000, 1)
          if (step === 'replica') fig[queueType].push(rate(N, performance.now() - t0))
          await again.stop()
          await db.exec(truncateSql(dialect, 'author_ref'))
        }
        ctx.log(`  rabbitmq ${step} run ${run + 1}/${ctx.runs}: quorum ${fig.quorum.at(-1)!.toFixed(0)}/s, classic ${fig.classic.at(-1)!.toFixed(0)}/s`)
      }
      out.push({
        benchmark: 'nats',
        dialect,
        metric: step === 'relay' ? `RabbitMQ relay into a quorum queue (${N.toLocaleString('en')} events)` : `RabbitMQ replica from a quorum queue (${N.toLocaleString('en')} events)`,
        unit: 'events/s',
        cqrs: fig.quorum,
        baseline: fig.classic,
        baselineLabel: 'the same through a classic queue',
      })
    }
  } finally {
    await nc.close().catch(() => {})
    const rabbitQueues = queues.filter((q) => q.kind === 'rabbitmq').flatMap((q) => replicaQueues(q.queue, RETRY_DELAYS))
    if (rabbitQueues.length) await deleteQueues(rabbitQueues)
    await cleanNats(queues.filter((q) => q.kind === 'nats').map((q) => q.queue), cqrsId, [`cqrs.raw_${suffix}`, `cqrs.rawrep_${suffix}`, `cqrs.${cqrsId}`])
    await db.drop()
  }
  return out
}

/** Delete the run's durables and purge its events from the shared stream. */
export async function cleanNats(queueNames: string[], cqrsId: string, subjects: string[]): Promise<void> {
  const nc = await connect({ servers: NATS_URL })
  const jsm = await jetstreamManager(nc)
  for (const queue of queueNames) for (const d of durablePlans(LAYOUT, { queue, cqrsIds: [cqrsId] })) await jsm.consumers.delete(d.stream, d.name).catch(() => {})
  for (const filter of subjects) await jsm.streams.purge(LAYOUT.stream, { filter }).catch(() => {})
  await nc.close()
}

