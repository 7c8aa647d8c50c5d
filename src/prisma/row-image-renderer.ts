import type { ResolvedMasterOptions } from '../config/master-options.js'
import { ConfigError } from '../core/errors.js'
import { deleteEvent, eventForWrite, type BuildContext } from '../master/event-builder.js'
import type { ModelPlan } from '../master/model-plan.js'
import type { OutboxRow } from '../master/outbox-store.js'
import type { ModelMeta } from './internals.js'
import { imageToRow, parseRowImage } from './row-image.js'

/**
 * The relay's renderer for capture-trigger rows: the row image becomes the same SAVE or DELETE the
 * extension would have written (fields, serializer, tracked fields, filter, meta), built at publish time.
 */
export function rowImageRenderer(client: any, metas: Map<string, ModelMeta>, plans: Map<string, ModelPlan>, opts: Pick<ResolvedMasterOptions, 'expiresInMs'>) {
  const byCqrsId = new Map([...plans.values()].map((p) => [p.cqrsId, p]))
  return async (row: OutboxRow): Promise<{ routingKey: string; body: string } | null> => {
    const plan = byCqrsId.get(row.cqrsId)
    if (!plan) throw new ConfigError(`outbox row ${row.id} is a row image for cqrs_id '${row.cqrsId}', which no master model in this config has; add it to models, or drop its capture triggers`)
    const meta = metas.get(plan.model)!
    const image = parseRowImage(row.body)
    const ctx: BuildContext = { tx: client, model: plan.model, operation: image.op, correlationId: image.cid == null ? null : String(image.cid), expires: opts.expiresInMs ? new Date(Date.now() + opts.expiresInMs).toISOString() : null }
    if (image.op === 'D') return deleteEvent(plan, imageToRow(meta, image.old ?? {}), ctx)
    const previous = image.old ? imageToRow(meta, image.old) : null
    return eventForWrite(plan, imageToRow(meta, image.new ?? {}), ctx, previous, image.op === 'I')
  }
}
