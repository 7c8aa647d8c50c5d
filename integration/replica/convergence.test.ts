/**
 * G2: a seeded random stream of creates, updates and deletes on the master, delivered with
 * duplicates, reordering and redelivery injected, ends with replica = master row for row: through
 * each transport (RabbitMQ on each database, NATS and memory on the first one, to keep the time
 * modest). The seed is printed on failure; rerun one with CQRS_SEED=<n>.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import { cqrsReplica } from '../../src/prisma/cqrs-replica.js'
import type { BatchHandler } from '../../src/transport/types.js'
import { ChaosPublisher, rng } from '../support/chaos.js'
import { eventually, tableDiff } from '../support/compare.js'
import { createTestDatabase, DIALECTS, type TestDatabase } from '../support/databases.js'
import { deleteQueue, makeTransport, TRANSPORTS } from '../support/transports.js'
import { masterClient } from '../support/master.js'

const SEED = Number(process.env.CQRS_SEED ?? Date.now() % 100_000)

const COMBOS = TRANSPORTS.flatMap((transport) => (transport === 'rabbitmq' ? DIALECTS : DIALECTS.slice(0, 1)).map((dialect) => ({ transport, dialect })))

describe.each(COMBOS)('convergence on $dialect through $transport', ({ transport, dialect }) => {
  let master: TestDatabase
  let replicaDb: TestDatabase
  const suffix = `_${dialect.slice(0, 2)}${transport.slice(0, 2)}${Math.random().toString(36).slice(2, 8)}`
  const queue = `conv${suffix}`

  beforeAll(async () => {
    ;[master, replicaDb] = await Promise.all([createTestDatabase(dialect, 'cm'), createTestDatabase(dialect, 'cr')])
  })
  afterAll(async () => {
    await Promise.allSettled([master?.drop(), replicaDb?.drop()])
  })

  it(`replica equals master after duplicates, reordering and redelivery (seed ${SEED})`, async () => {
    const random = rng(SEED)
    const cqrsId = `author${suffix}`
    const publisher = new ChaosPublisher(makeTransport(transport), random)
    const base = await master.client()
    const prisma = await masterClient(base, { transport: publisher, logger: silentLogger, relay: { enabled: false, batchSize: 20 }, models: { author: { cqrsId } } })

    const replicaTransport = makeTransport(transport)
    const replica = cqrsReplica({ prisma: await replicaDb.client(), transport: replicaTransport, queue, logger: silentLogger, prefetch: 50, batchSize: 25, handlers: { [cqrsId]: { model: 'authorRef' } } })
    // Redelivery: some batches fail before their acks (nothing applied), some after applying
    // (the acks are lost), so the broker hands them out again.
    let redelivered = 0
    const handle = replica.consumer.handle
    ;(replica.consumer as { handle: BatchHandler }).handle = async (batch) => {
      const r = random()
      if (r < 0.1) {
        redelivered += batch.length
        throw new Error('chaos: worker failed before applying')
      }
      const out = await handle(batch)
      if (r < 0.2) {
        redelivered += batch.length
        throw new Error('chaos: acks lost after applying')
      }
      return out
    }
    await replica.start()
    try {
      const ids: number[] = []
      for (let i = 0; i < 300; i++) {
        const r = random()
        if (ids.length < 5 || r < 0.3) {
          const a = await prisma.author.create({ data: { name: `n${i}`, externalId: `e${i}`, rating: i } })
          ids.push(a.id)
        } else if (r < 0.85) {
          const id = ids[Math.floor(random() * ids.length)]
          await prisma.author.update({ where: { id }, data: { name: `u${i}`, rating: { increment: 1 }, isActive: random() < 0.5 } })
        } else if (r < 0.95) {
          const id = ids.splice(Math.floor(random() * ids.length), 1)[0]
          await prisma.author.delete({ where: { id } })
        } else {
          // A transaction that touches two rows and rolls back: nothing may leak.
          await prisma
            .$transaction(async (tx: any) => {
              await tx.author.update({ where: { id: ids[0] }, data: { name: 'rolled back' } })
              throw new Error('rollback')
            })
            .catch(() => {})
        }
        if (i % 37 === 0) await prisma.$cqrs.flush()
      }
      await prisma.$cqrs.flush()
      await publisher.release()
      await eventually(() => tableDiff(master, 'author', replicaDb, 'author_ref'), 60_000)
      expect(publisher.duplicated + publisher.reordered + redelivered, 'the faults were injected').toBeGreaterThan(0)
    } catch (e) {
      throw new Error(`convergence failed with seed ${SEED} (rerun: CQRS_SEED=${SEED}): ${(e as Error).message}`)
    } finally {
      await replica.stop()
      await prisma.$cqrs.close()
      await deleteQueue(transport, queue, [cqrsId])
    }
  })
})

