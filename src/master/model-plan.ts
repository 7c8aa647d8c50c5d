import type { ScalarKind } from '../core/codec.js'
import type { CaptureContext, Row } from '../config/master-options.js'

/** One field sent in `instance_data`: the model field, its key on the wire, how to encode it. */
export interface WireField {
  field: string
  key: string
  kind: ScalarKind
  /** Digits after the point of a decimal column (`@db.Decimal(18, 2)`): sent with exactly these. */
  scale?: number
}

/** Everything the capture needs about one master model, resolved once from options + metadata. */
export interface ModelPlan {
  model: string
  cqrsId: string
  pkField: string
  pkKind: ScalarKind
  revisionField: string
  updatedField: string
  /** Fields sent when there is no serializer. */
  wire: WireField[]
  /** Every scalar field of the model with its kind (for tracked fields and the serializer's row). */
  kinds: Map<string, ScalarKind>
  serializer?: (row: Row, ctx: CaptureContext) => Row | Promise<Row>
  trackedFields: string[]
  /** The tracked fields with their `previous_data` keys (attribute names in the Django mode). */
  tracked: WireField[]
  /**
   * What `previous_data` holds on update: every tracked field (`'all'`, the default), or only those
   * whose value changed (`'changed'`, what a django-cqrs master sends; the Django mode).
   */
  previousData: 'all' | 'changed'
  filter?: (row: Row) => boolean
  meta?: Record<string, unknown> | ((row: Row, ctx: CaptureContext) => Record<string, unknown>)
  produce: boolean
}

/** An event ready for the outbox table. */
export interface OutboxEvent {
  cqrsId: string
  pk: string
  routingKey: string
  body: string
}
