import { decodeValue } from '../core/codec.ts'
import { MessageValidationError } from '../core/errors.ts'
import { revisionOf, type CqrsMessage } from '../core/message.ts'
import type { ApplyOp, TableTarget } from './apply-op.ts'

const RESERVED = new Set(['cqrs_revision', 'cqrs_updated'])

/** A message made ready for its table: values decoded to column types, checked, keyed by column. */
export function toApplyOp(target: TableTarget, m: CqrsMessage, force = false): ApplyOp {
  const data = m.instance_data
  const pk = decodeValue(target.pk.kind, m.instance_pk ?? data.id, 'instance_pk')
  if (pk === null) throw new MessageValidationError(`message for '${m.cqrs_id}' has no primary key (instance_pk)`)
  const updatedRaw = data.cqrs_updated
  const updated = updatedRaw == null ? null : (decodeValue('DateTime', updatedRaw, 'cqrs_updated') as Date)
  const op: ApplyOp = { signal: m.signal_type, force, pk, pkKey: String(pk), revision: revisionOf(m), updated, values: new Map() }
  if (m.signal_type === 'DELETE') return op
  for (const [key, v] of Object.entries(data)) {
    if (RESERVED.has(key)) continue
    const col = target.byKey.get(key)
    if (!col || col === target.pk) continue // keys the replica does not store are ignored
    try {
      op.values.set(col.column, decodeValue(col.kind, v, key))
    } catch (e) {
      throw new MessageValidationError(`${(e as Error).message} (cqrs_id '${m.cqrs_id}', pk ${op.pkKey}, replica column ${target.table}.${col.column})`)
    }
  }
  for (const col of target.byKey.values()) {
    if (col.required && col !== target.pk && col !== target.revision && col !== target.updated && !op.values.has(col.column))
      throw new MessageValidationError(`instance_data of '${m.cqrs_id}' pk ${op.pkKey} lacks '${col.field}', which ${target.table}.${col.column} requires; map it with handlers.${m.cqrs_id}.fields or give the column a default`)
    if (col.required && op.values.get(col.column) === null)
      throw new MessageValidationError(`'${col.field}' is null in '${m.cqrs_id}' pk ${op.pkKey}, but ${target.table}.${col.column} is NOT NULL`)
  }
  return op
}
