import type { ScalarKind } from '../core/codec.js'
import type { CaptureContext, Row } from '../config/master-options.js'

/** One field sent in `instance_data`: the model field, its key on the wire, how to encode it. */
export interface WireField {
  field: string
  key: string
  kind: ScalarKind
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
