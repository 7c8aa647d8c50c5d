import { Prisma } from '@prisma/client/extension'
import { resolveMasterOptions, type MasterOptions } from '../config/master-options.ts'
import { ConfigError } from '../core/errors.ts'
import { stderrLogger, type Logger } from '../core/logger.ts'
import type { Transport } from '../transport/types.ts'
import { Relay } from '../master/relay.ts'
import { runtime } from '../transport/runtime-transport.ts'
import { Capture, WRITE_OPERATIONS, type HookArg } from './capture.ts'
import { clientInTransaction, currentTransaction, modelsOf, providerOf, runPromiseInTransaction, transactionOf } from './internals.ts'
import { buildPlans, findModel } from './model-plans.ts'
import { PrismaOutboxStore } from './prisma-outbox-store.ts'

/** What `prisma.$cqrs` offers on an extended client. */
export interface CqrsMasterHandle {
  relay: Relay
  /** Publish everything in the outbox now; resolves when it is empty. */
  flush(timeoutMs?: number): Promise<number>
  /** Stop the in-process relay and close the transport. Call before `$disconnect()`. */
  close(): Promise<void>
}

/**
 * The master side as a Prisma client extension:
 * `new PrismaClient({ adapter }).$extends(cqrsMaster({ transport, models: { account: { cqrsId: 'account' } } }))`.
 * Every write to a configured model writes its event to the outbox in the same transaction; a relay
 * publishes the outbox (in this process unless `relay.enabled` is false).
 */
export function cqrsMaster(options: MasterOptions) {
  const opts = resolveMasterOptions(options)
  const logger = opts.logger ?? stderrLogger()
  return Prisma.defineExtension((typedClient) => {
    const client = typedClient as any
    const metas = modelsOf(client)
    const provider = providerOf(client)
    const plans = buildPlans(metas, opts)
    const outboxMeta = findModel(metas, opts.outboxModel)
    if (!outboxMeta)
      throw new ConfigError(
        `The outbox model '${opts.outboxModel}' is not in this Prisma schema. Copy node_modules/cqrs-sync/prisma/cqrs.${provider}.prisma into your schema folder, migrate, and run prisma generate.`,
      )
    const transport = runtime(opts.transport)
    const relay = new Relay({ store: new PrismaOutboxStore(client, provider, outboxMeta), transport, batchSize: opts.relay.batchSize, pollIntervalMs: opts.relay.pollIntervalMs, logger })
    const capture = new Capture(client, provider, metas, plans, outboxMeta, opts)
    const afterCommit = () => {
      if (!opts.relay.enabled) return
      relay.start()
      relay.kick()
    }
    const handle: CqrsMasterHandle = {
      relay,
      flush: (timeoutMs) => relay.drain(timeoutMs),
      async close() {
        await relay.stop()
        await transport.close()
      },
    }
    if (opts.relay.enabled) relay.start()

    // Interactive transactions run as usual; a batch `$transaction([...])` runs its queries one by
    // one in an interactive transaction, so each write can add its outbox row (same atomicity).
    // Declared apart so the override keeps Prisma's own typing of $transaction for users.
    const transactionOverride = {
        async $transaction(this: any, arg: any, txOptions?: any) {
          const self: any = Prisma.getExtensionContext(this)
          const result =
            typeof arg === 'function'
              ? await client.$transaction(async (tx0: any) => arg(clientInTransaction(self, await transactionOf(tx0))), txOptions)
              : await client.$transaction(async (tx0: any) => {
                  const t = await transactionOf(tx0)
                  const out: unknown[] = []
                  for (const p of arg) out.push(await runPromiseInTransaction(p, t))
                  return out
                }, txOptions)
          afterCommit()
          return result
        },
    } as {}

    return typedClient.$extends({
      name: 'cqrs-sync-master',
      client: { $cqrs: handle, ...transactionOverride },
      query: {
        $allModels: {
          async $allOperations(a: any) {
            const plan = plans.get(a.model)
            if (!plan || !WRITE_OPERATIONS.has(a.operation)) return a.query(a.args)
            const t = currentTransaction(a)
            if (t?.kind === 'itx') return capture.run(a, plan, t)
            if (t) throw new ConfigError(`cqrs-sync: ${a.model}.${a.operation} runs in a '${t.kind}' transaction it cannot capture; call $transaction on the client extended with cqrsMaster()`)
            const result = await client.$transaction(async (tx0: any) => capture.run(a, plan, await transactionOf(tx0)))
            afterCommit()
            return result
          },
        },
      },
    })
  })
}

/**
 * A relay on its own (for `cqrs relay`): publishes the outbox of `prisma` (a plain or extended client)
 * through `transport`.
 */
export function createRelay(prisma: any, transport: Transport, options: { batchSize?: number; pollIntervalMs?: number; outboxModel?: string; logger?: Logger } = {}): Relay {
  const metas = modelsOf(prisma)
  const provider = providerOf(prisma)
  const name = options.outboxModel ?? 'CqrsOutbox'
  const outboxMeta = findModel(metas, name)
  if (!outboxMeta) throw new ConfigError(`The outbox model '${name}' is not in this Prisma schema; add prisma/cqrs.${provider}.prisma from cqrs-sync to your schema.`)
  return new Relay({ store: new PrismaOutboxStore(prisma, provider, outboxMeta), transport: runtime(transport), batchSize: options.batchSize ?? 500, pollIntervalMs: options.pollIntervalMs ?? 1000, logger: options.logger ?? stderrLogger() })
}
