/**
 * The transports the replica tests run against: `CQRS_TEST_TRANSPORTS` (default
 * `rabbitmq,nats,memory`), each made the same way for the master and the replica side, and
 * cleaned up after a test by queue name. Memory cannot cross processes, so CLI tests use
 * {@link CLI_TRANSPORTS}.
 */
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { silentLogger } from '../../src/core/logger.js'
import { memory, MemoryBroker } from '../../src/transport/memory/index.js'
import { durablePlans, nats } from '../../src/transport/nats/index.js'
import { rabbitmq } from '../../src/transport/rabbitmq/index.js'
import type { Transport } from '../../src/transport/types.js'
import { AMQP_URL } from './databases.js'
import { deleteQueues } from './rabbit-cleanup.js'

export type TransportKind = 'rabbitmq' | 'nats' | 'memory'
export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222'
export const TRANSPORTS = (process.env.CQRS_TEST_TRANSPORTS?.split(',') as TransportKind[] | undefined) ?? ['rabbitmq', 'nats', 'memory']
/** The transports a subprocess can reach. */
export const CLI_TRANSPORTS = TRANSPORTS.filter((t) => t !== 'memory')

// One in-process broker, so a master and a replica made here see each other.
const broker = new MemoryBroker()

/** A new transport of `kind`; redeliveries after a lost worker come after 2 s on NATS (its ack wait). */
export function makeTransport(kind: TransportKind): Transport {
  if (kind === 'rabbitmq') return rabbitmq({ url: AMQP_URL, logger: silentLogger })
  if (kind === 'nats') return nats({ servers: NATS_URL, logger: silentLogger, ackWaitMs: 2_000 })
  return memory({ broker, logger: silentLogger })
}

/** Env for a CLI subprocess (integration/support/test-config.ts) on `kind`. */
export const transportEnv = (kind: TransportKind): Record<string, string> => ({ CQRS_TRANSPORT: kind, NATS_URL, CQRS_NATS_ACK_WAIT_MS: '2000' })

/**
 * Delete what a test declared for `queue` (cqrs_ids needed on NATS, whose durables are per cqrs_id);
 * on NATS also purge the test's events and dead letters from the shared streams.
 */
export async function deleteQueue(kind: TransportKind, queue: string, cqrsIds: string[]): Promise<void> {
  if (kind === 'rabbitmq') return deleteQueues(queue)
  if (kind === 'memory') {
    broker.deleteQueue(queue)
    broker.deleteQueue(`dead_letter_${queue}`)
    return
  }
  const nc = await connect({ servers: NATS_URL })
  try {
    const jsm = await jetstreamManager(nc)
    const layout = { stream: 'CQRS', retryStream: 'CQRS_RETRY', deadLetterStream: 'CQRS_DLQ', subjectPrefix: 'cqrs' }
    for (const d of durablePlans(layout, { queue, cqrsIds })) await jsm.consumers.delete(d.stream, d.name).catch(() => {})
    await jsm.streams.purge(layout.deadLetterStream, { filter: `cqrs_dlq.${queue}.>` }).catch(() => {})
    for (const filter of [`cqrs.${queue}.>`, ...cqrsIds.map((id) => `cqrs.${id}`)]) await jsm.streams.purge(layout.stream, { filter }).catch(() => {})
  } finally {
    await nc.close()
  }
}
