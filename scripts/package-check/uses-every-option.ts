// Type-checked in a fresh app by scripts/check-package.mjs, under `strict` with `module: nodenext`
// and with `moduleResolution: bundler`: every public option of the package, as a user writes it.
// A `@ts-expect-error` line fails the check if a type goes loose (any) and stops catching mistakes.
import { PrismaPg } from '@prisma/adapter-pg'
import {
  adapterFromUrl,
  ConfigError,
  cqrsMaster,
  cqrsReplica,
  createRelay,
  CqrsError,
  decodeMessage,
  defineConfig,
  encodeMessage,
  listDeadLetters,
  MessageValidationError,
  NonRetryableError,
  purgeDeadLetters,
  retryDeadLetters,
  silentLogger,
  stderrLogger,
  TransportError,
  type CaptureContext,
  type CqrsConfig,
  type CqrsMessage,
  type HandlerContext,
  type Logger,
  type MasterOptions,
  type ReplicaOptions,
  type Transport,
} from 'cqrs-sync'
import { memory, MemoryBroker } from 'cqrs-sync/memory'
import { DEFAULT_AMQP_URL, rabbitmq, type RabbitmqOptions } from 'cqrs-sync/rabbitmq'
import { PrismaClient } from '../generated/client.js'

const logger: Logger = stderrLogger('info')

const rabbitOptions: RabbitmqOptions = {
  url: process.env.AMQP_URL ?? DEFAULT_AMQP_URL,
  exchange: 'cqrs',
  publishConfirmWindow: 500,
  reconnect: { initialMs: 100, maxMs: 5000 },
  heartbeat: 30,
  deadLetterExpirationMs: 10 * 24 * 3600 * 1000,
  connectionName: 'billing',
  logger,
}
const transport: Transport = rabbitmq(rabbitOptions)
const broker = new MemoryBroker()
const inMemory = memory({ broker, queues: [{ queue: 'payments', cqrsIds: ['account'] }], logger: silentLogger })

const masterOptions: MasterOptions = {
  transport,
  capture: 'extension',
  correlationId: (ctx: CaptureContext) => `${ctx.model}:${ctx.operation}`,
  expiresInMs: 60_000,
  revisionField: 'cqrsRevision',
  updatedField: 'cqrsUpdated',
  outboxModel: 'CqrsOutbox',
  relay: { enabled: true, batchSize: 500, pollIntervalMs: 1000 },
  logger,
  models: {
    account: {
      cqrsId: 'account',
      fields: { id: 'id', name: 'name' },
      serializer: async (row, { tx }) => ({ ...row, owner: await tx.account.count() }),
      trackedFields: ['name'],
      filter: (row) => row.name !== 'hidden',
      meta: (row) => ({ source: 'billing', id: row.id }),
      produce: true,
      pk: 'id',
      keys: 'column',
    },
  },
}
// @ts-expect-error: capture is 'extension' or 'trigger'
const badCapture: MasterOptions = { ...masterOptions, capture: 'sometimes' }

const adapter = new PrismaPg({ connectionString: process.env.DATABASE_URL ?? 'postgresql://localhost/app' })
const master = new PrismaClient({ adapter }).$extends(cqrsMaster(masterOptions))
export async function write(): Promise<number> {
  await master.account.update({ where: { id: 1 }, data: { name: 'Pavel' } })
  const n: number = await master.$cqrs.flush(5000)
  await master.$cqrs.close()
  return n
}

const replicaOptions: ReplicaOptions = {
  prisma: new PrismaClient({ adapter: await adapterFromUrl('postgresql://localhost/replica', { poolSize: 4 }) }),
  transport: inMemory,
  queue: 'payments',
  prefetch: 500,
  batchSize: 100,
  retry: { maxRetries: 3, delaysMs: [1000, 5000] },
  honorExpires: true,
  tombstoneRetentionMs: 24 * 3600 * 1000,
  revisionField: 'cqrsRevision',
  updatedField: 'cqrsUpdated',
  logger,
  handlers: {
    account: {
      model: 'accountRef',
      fields: { owner: 'ownerId' },
      create: async (data: Record<string, unknown>, ctx: HandlerContext) => ctx.tx.accountRef.create({ data }),
      update: async (data: Record<string, unknown>, ctx: HandlerContext) => ctx.tx.accountRef.update({ where: { id: ctx.pk }, data }),
      delete: async (pk: unknown, ctx: HandlerContext) => ctx.tx.accountRef.delete({ where: { id: pk } }),
    },
    audit: {
      handle: async (message: CqrsMessage) => {
        if (message.signal_type === 'DELETE') throw new NonRetryableError('deletes are not audited')
      },
    },
  },
}
const replica = cqrsReplica(replicaOptions)
export async function consume(): Promise<void> {
  await replica.start()
  await listDeadLetters(inMemory, replica.spec, 10)
  await retryDeadLetters(inMemory, replica.spec, { all: true })
  await purgeDeadLetters(inMemory, replica.spec, { cqrsIds: ['account'] })
  await replica.stop()
}

const relay = createRelay(new PrismaClient({ adapter }), transport, { batchSize: 100, pollIntervalMs: 500, logger })
relay.start()

const config: CqrsConfig = defineConfig({
  transport: () => rabbitmq({ url: process.env.AMQP_URL }),
  master: async () => ({ prisma: new PrismaClient({ adapter }), models: { account: { cqrsId: 'account' } }, relay: { enabled: false } }),
  replica: () => ({ prisma: new PrismaClient({ adapter }), queue: 'payments', handlers: { account: { model: 'accountRef' } } }),
})

const text = encodeMessage(decodeMessage(Buffer.from('{}')))
const errors: CqrsError[] = [new ConfigError('x'), new MessageValidationError('x'), new TransportError('x')]
export { badCapture, config, errors, text }
