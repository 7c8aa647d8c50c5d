import { encodeValue } from '../core/codec.js'
import type { CaptureContext, Row } from '../config/master-options.js'
import { stringifyJson } from '../core/json.js'
import { encodeMessage, type CqrsMessage, type SignalType } from '../core/message.js'
import { valueOf } from './exact-values.js'
import type { ModelPlan, OutboxEvent } from './model-plan.js'

export interface BuildContext extends CaptureContext {
  correlationId: string | null
  expires: string | null
}

/** `instance_data` of a SAVE or SYNC: the configured fields (or the serializer's output) plus revision and time. */
export async function instanceData(plan: ModelPlan, row: Row, ctx: CaptureContext): Promise<Record<string, unknown>> {
  const data: Record<string, unknown> = {
    cqrs_revision: row[plan.revisionField],
    cqrs_updated: encodeValue('DateTime', valueOf(row, plan.updatedField)),
  }
  if (plan.serializer) {
    const out = await plan.serializer(row, ctx)
    for (const [k, v] of Object.entries(out)) data[k] = v instanceof Date ? encodeValue('DateTime', v) : v
  } else {
    for (const f of plan.wire) data[f.key] = encodeValue(f.kind, valueOf(row, f.field), f.scale)
  }
  return data
}

const pkValue = (plan: ModelPlan, row: Row) => encodeValue(plan.pkKind, row[plan.pkField]) as string | number | bigint

/** The pk as stored in the outbox and tombstones: a string whatever its type. */
export const pkString = (v: unknown): string => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : String(v))

function metaOf(plan: ModelPlan, row: Row, ctx: CaptureContext): Record<string, unknown> {
  if (!plan.meta) return {}
  return typeof plan.meta === 'function' ? plan.meta(row, ctx) : plan.meta
}

function toEvent(plan: ModelPlan, row: Row, m: CqrsMessage, routingKey = plan.cqrsId): OutboxEvent {
  return { cqrsId: plan.cqrsId, pk: pkString(row[plan.pkField]), routingKey, body: encodeMessage(m) }
}

/** A SAVE (or SYNC when `signal` says so) for a row as it is after the write. */
export async function saveEvent(plan: ModelPlan, row: Row, ctx: BuildContext, previous: Row | null | undefined, signal: SignalType = 'SAVE', routingKey?: string): Promise<OutboxEvent> {
  const message: CqrsMessage = {
    signal_type: signal,
    cqrs_id: plan.cqrsId,
    instance_data: await instanceData(plan, row, ctx),
    previous_data: previousData(plan, row, previous),
    instance_pk: pkValue(plan, row),
    correlation_id: ctx.correlationId,
    retries: 0,
    expires: ctx.expires,
    meta: metaOf(plan, row, ctx),
  }
  return toEvent(plan, row, message, routingKey)
}

/** A DELETE: `instance_data` holds only `id`, `cqrs_revision` and `cqrs_updated` (PROTOCOL.md). */
export function deleteEvent(plan: ModelPlan, row: Row, ctx: BuildContext): OutboxEvent {
  const message: CqrsMessage = {
    signal_type: 'DELETE',
    cqrs_id: plan.cqrsId,
    instance_data: {
      id: pkValue(plan, row),
      cqrs_revision: row[plan.revisionField],
      cqrs_updated: encodeValue('DateTime', valueOf(row, plan.updatedField)),
    },
    previous_data: null,
    instance_pk: pkValue(plan, row),
    correlation_id: ctx.correlationId,
    retries: 0,
    expires: ctx.expires,
    meta: metaOf(plan, row, ctx),
  }
  return toEvent(plan, row, message)
}

/**
 * `previous_data`: null when nothing is tracked; on create every tracked field as null; on update the
 * old values of every tracked field, or (`previousData: 'changed'`, django-cqrs's rule) only of those
 * whose wire value changed.
 */
function previousData(plan: ModelPlan, row: Row, previous: Row | null | undefined): Record<string, unknown> | null {
  if (!plan.tracked.length) return null
  const out: Record<string, unknown> = {}
  for (const f of plan.tracked) {
    if (!previous) {
      out[f.key] = null
      continue
    }
    const old = encodeValue(f.kind, valueOf(previous, f.field), f.scale)
    if (plan.previousData === 'changed' && stringifyJson(old) === stringifyJson(encodeValue(f.kind, valueOf(row, f.field), f.scale))) continue
    out[f.key] = old
  }
  return out
}

/** SAVE when the row passes the filter; DELETE when an update made it leave; nothing for a filtered create. */
export async function eventForWrite(plan: ModelPlan, row: Row, ctx: BuildContext, previous: Row | null | undefined, created: boolean): Promise<OutboxEvent | null> {
  if (plan.filter && !plan.filter(row)) return created ? null : deleteEvent(plan, row, ctx)
  return saveEvent(plan, row, ctx, previous)
}
