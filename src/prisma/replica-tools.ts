import type { ReplicaOptions } from '../config/replica-options.js'
import { ConfigError, didYouMean } from '../core/errors.js'
import { silentLogger } from '../core/logger.js'
import type { TableTarget } from '../replica/apply-op.js'
import { consumerApplier, tableApplier, type Applier } from '../replica/applier.js'
import { offlineTransport } from '../transport/offline-transport.js'
import type { Transport } from '../transport/types.js'
import { cqrsReplica, type Replica } from './cqrs-replica.js'
import { modelsOf } from './internals.js'
import { findModel } from './model-plans.js'
import { RowScanner } from './row-scanner.js'

/** The `replica` section of `cqrs.config.ts`: replica options, the transport optional. */
export type ReplicaSection = Omit<ReplicaOptions, 'transport'> & { transport?: Transport }

/** One replica table, ready for the operating tools (load, diffs, deleted-sync). */
export interface ReplicaTable {
  replica: Replica
  target: TableTarget
  /** Reads the table's rows in primary-key order. */
  reader: RowScanner
  /** Version-gated apply: the store for plain tables, the consumer for handlers with row hooks. */
  applier: Applier
  queue: string
}

/** The replica side of the operating tools; `close()` ends what it opened (not the client). */
export interface ReplicaTools {
  replica: Replica
  /** The table that receives `cqrsId`; an unknown id, or a custom handler, is a ConfigError. */
  table(cqrsId: string): ReplicaTable
  close(): Promise<void>
}

/**
 * Resolve a replica section for the tools, validated as `cqrsReplica()` does. Nothing connects to
 * the broker: without a transport an offline one stands in. `where` names the config in messages.
 */
export function openReplicaTools(section: ReplicaSection, where = 'cqrs.config.ts'): ReplicaTools {
  const replica = cqrsReplica({ ...section, transport: section.transport ?? offlineTransport, logger: silentLogger })
  const readers: RowScanner[] = []
  return {
    replica,
    table(cqrsId) {
      const route = replica.routes.get(cqrsId)
      if (!route) {
        const known = [...replica.routes.keys()]
        throw new ConfigError(`Unknown cqrs_id '${cqrsId}': the replica handlers in ${where} take ${known.join(', ')}.${didYouMean(cqrsId, known)}`)
      }
      if (route.kind !== 'table') throw new ConfigError(`cqrs_id '${cqrsId}' has a custom handler (handle()), not a replica table: the dump and diff tools need a table to read and write`)
      const handler = section.handlers[cqrsId] as { model: string }
      const meta = findModel(modelsOf(section.prisma), handler.model)!
      const reader = new RowScanner(section.prisma, meta, { pkField: route.target.pk.field, revisionField: route.target.revision.field })
      readers.push(reader)
      const applier = route.hooks ? consumerApplier(replica.consumer) : tableApplier(replica.store, route.target)
      return { replica, target: route.target, reader, applier, queue: replica.options.queue }
    },
    async close() {
      await Promise.all([...readers.splice(0).map((r) => r.close()), replica.store.close()])
    },
  }
}
