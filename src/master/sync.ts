import { randomUUID } from 'node:crypto'
import type { Row } from '../config/master-options.js'
import { LineError } from '../core/dump-format.js'
import type { Parsed, WirePk } from '../core/diff-format.js'
import { directRoutingKey } from '../transport/queue-names.js'
import type { OutgoingMessage, Transport } from '../transport/types.js'
import { decodePks } from './diff-master.js'
import { replicated } from './dump.js'
import { saveEvent, type BuildContext } from './event-builder.js'
import type { ModelPlan } from './model-plan.js'
import type { RowSource } from './row-source.js'

export interface SyncTarget {
  source: RowSource
  plan: ModelPlan
  /** Publishes with confirms (a runtime-wrapped transport). */
  transport: Pick<Transport, 'publish'>
  ctx: BuildContext
  /** One replica queue (`cqrs.<Q>.<cqrs_id>`), or null for every replica (`<cqrs_id>`). */
  queue: string | null
}

/** Progress of a sync: rows published and rows asked for that the master does not have (or filters out). */
export interface SyncBatch {
  line?: number
  published: number
  skipped: number
}

/** The routing key of a SYNC (PROTOCOL.md): broadcast, or to one replica queue. */
export const syncRoutingKey = (cqrsId: string, queue: string | null): string => (queue ? directRoutingKey(queue, cqrsId) : cqrsId)

/** SYNC messages for rows: the same `instance_data` as a SAVE, confirmed by the broker before this resolves. */
export async function publishSync(t: SyncTarget, rows: Row[]): Promise<number> {
  const key = syncRoutingKey(t.plan.cqrsId, t.queue)
  const messages: OutgoingMessage[] = []
  for (const row of rows) {
    const e = await saveEvent(t.plan, row, t.ctx, null, 'SYNC', key)
    messages.push({ routingKey: e.routingKey, body: e.body, messageId: `sync-${randomUUID()}` })
  }
  if (messages.length) await t.transport.publish(messages)
  return messages.length
}

/** `cqrs sync`: re-publish the rows matching `where` as SYNC, page by page in pk order. */
export async function* syncRows(t: SyncTarget & { batchSize: number; where?: Record<string, unknown> }): AsyncIterable<SyncBatch> {
  for await (const page of t.source.pages({ batchSize: t.batchSize, where: t.where })) {
    const rows = page.filter((r) => replicated(t.plan, r))
    yield { published: await publishSync(t, rows), skipped: page.length - rows.length }
  }
}

/**
 * Stage 3 of the diff pipe (diff-sync): publish the current master rows of each batch of pks as SYNC.
 * Pks the master no longer has are skipped and counted (the deleted-diff pipe is for those).
 */
export async function* syncPks(t: SyncTarget & { batches: AsyncIterable<Parsed<WirePk[]>> }): AsyncIterable<SyncBatch | LineError> {
  for await (const b of t.batches) {
    if (b instanceof LineError) {
      yield b
      continue
    }
    let pks: unknown[]
    try {
      pks = decodePks(t.plan, b.line, b.items)
    } catch (e) {
      yield e as LineError
      continue
    }
    const rows = (await t.source.byPks(pks)).filter((r) => replicated(t.plan, r))
    yield { line: b.line, published: await publishSync(t, rows), skipped: b.items.length - rows.length }
  }
}
