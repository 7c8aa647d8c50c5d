import type { ScalarKind } from '../core/codec.js'
import type { ExactDateTime } from '../core/datetime.js'
import type { SignalType } from '../core/message.js'

/** A replica column fed from the wire. */
export interface TargetColumn {
  column: string
  field: string
  kind: ScalarKind
  required: boolean
}

/** Where one cqrs_id lands: a replica table, resolved once from the handler options. */
export interface TableTarget {
  cqrsId: string
  table: string
  pk: TargetColumn
  revision: TargetColumn
  updated: TargetColumn | null
  /** Wire key -> column, for every key the replica stores. */
  byKey: Map<string, TargetColumn>
}

/** One message, decoded for its target: what the store applies. */
export interface ApplyOp {
  signal: SignalType
  /** SYNC sent with force: applies even when older. */
  force: boolean
  /** The pk as the column type wants it. */
  pk: unknown
  /** The pk as a string: tombstones, locks, de-duplication. */
  pkKey: string
  revision: number
  /** `cqrs_updated` with every digit the wire gave. */
  updated: ExactDateTime | null
  /** Column -> decoded value (decode-op's `decodeColumn`; SAVE and SYNC). */
  values: Map<string, unknown>
}

/** How one op ended: `applied` changed the table, `skipped` was older, a duplicate or tombstoned. */
export type ApplyResult = 'applied' | 'skipped'
