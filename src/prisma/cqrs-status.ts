import { ConfigError } from '../core/errors.js'
import { silentLogger } from '../core/logger.js'
import { runtime } from '../transport/runtime-transport.js'
import type { QueueStats, Transport } from '../transport/types.js'
import { cqrsReplica } from './cqrs-replica.js'
import { modelsOf, providerOf } from './internals.js'
import { findModel } from './model-plans.js'
import { PrismaOutboxStore, type OutboxLeadership } from './prisma-outbox-store.js'
import type { ReplicaSection } from './replica-tools.js'

/** What `cqrs status` reports; `--json` prints it as it is. */
export interface StatusReport {
  /** `relays` on PostgreSQL: the outbox's trigger that wakes relays (wake-up or NOTIFY), and the session of the relay that leads. */
  master?: { outboxBacklog: number; oldestEventAt: string | null; oldestEventAgeSeconds: number | null; relays?: OutboxLeadership }
  replica?: QueueStats
}

/**
 * The health of a master (events waiting in the outbox, the age of the oldest: a growing age means
 * no relay runs) and of a replica (its queue's depth and consumers, retrying and dead letters).
 * Give either side or both; the replica side needs a transport that reports queue depths.
 */
export async function cqrsStatus(sides: { master?: { prisma: any; outboxModel?: string }; replica?: ReplicaSection & { transport: Transport } }, now = Date.now()): Promise<StatusReport> {
  const report: StatusReport = {}
  if (sides.master) {
    const { prisma, outboxModel = 'CqrsOutbox' } = sides.master
    const meta = findModel(modelsOf(prisma), outboxModel)
    if (!meta) throw new ConfigError(`The outbox model '${outboxModel}' is not in the master's Prisma schema; add prisma/cqrs.<provider>.prisma from cqrs-sync to it`)
    const store = new PrismaOutboxStore(prisma, providerOf(prisma), meta)
    try {
      const { count, oldestAt } = await store.backlog()
      const relays = await store.leadership()
      report.master = { outboxBacklog: count, oldestEventAt: oldestAt?.toISOString() ?? null, oldestEventAgeSeconds: oldestAt ? Math.max(0, (now - oldestAt.getTime()) / 1000) : null, ...(relays && { relays }) }
    } finally {
      await store.close()
    }
  }
  if (sides.replica) {
    const transport = runtime(sides.replica.transport)
    if (!transport.queueStats) throw new ConfigError(`the ${transport.name} transport cannot report queue depths (it has no queueStats())`)
    const replica = cqrsReplica({ ...sides.replica, transport, logger: silentLogger })
    report.replica = await transport.queueStats(replica.spec)
  }
  return report
}
