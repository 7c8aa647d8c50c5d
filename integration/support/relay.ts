import { silentLogger } from '../../src/core/logger.js'
import { Relay, type RelayOptions } from '../../src/master/relay.js'
import { modelsOf } from '../../src/prisma/internals.js'
import { findModel } from '../../src/prisma/model-plans.js'
import { PrismaOutboxStore } from '../../src/prisma/prisma-outbox-store.js'
import { rabbitmq } from '../../src/transport/rabbitmq/index.js'
import { runtime } from '../../src/transport/runtime-transport.js'
import { AMQP_URL } from './databases.js'

/**
 * A relay over the PostgreSQL outbox of `prisma` publishing to RabbitMQ, silent unless `options`
 * give a logger; returns its store too, for tests that look inside it.
 */
export function pgRelay(prisma: any, options: Partial<RelayOptions> = {}): { relay: Relay; store: PrismaOutboxStore } {
  const store = new PrismaOutboxStore(prisma, 'postgresql', findModel(modelsOf(prisma), 'CqrsOutbox')!)
  const relay = new Relay({ store, transport: runtime(rabbitmq({ url: AMQP_URL, logger: silentLogger })), batchSize: 50, pollIntervalMs: 1000, logger: silentLogger, ...options })
  return { relay, store }
}
