import { connect, type NatsConnection } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { afterAll, beforeAll } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import { durablePlans, nats } from '../../src/transport/nats/index.js'
import type { QueueSpec } from '../../src/transport/types.js'
import { transportContract } from './contract.js'

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222'
const layout = { stream: 'CQRS', retryStream: 'CQRS_RETRY', deadLetterStream: 'CQRS_DLQ', subjectPrefix: 'cqrs' }

let admin: NatsConnection
beforeAll(async () => {
  admin = await connect({ servers: NATS_URL })
})
afterAll(async () => {
  await admin?.close()
})

/** Delete the durables of `spec` and its dead letters. */
async function deleteQueue(spec: QueueSpec): Promise<void> {
  const jsm = await jetstreamManager(admin)
  for (const d of durablePlans(layout, spec)) await jsm.consumers.delete(d.stream, d.name).catch(() => {})
  await jsm.streams.purge(layout.deadLetterStream, { filter: `cqrs_dlq.${spec.queue}.>` }).catch(() => {})
}

transportContract('nats', () => nats({ servers: NATS_URL, logger: silentLogger, ackWaitMs: 5_000 }), { cleanup: deleteQueue, ordering: 'subject' })
