import { decodeValue } from '../core/codec.js'
import type { ExactDateTime } from '../core/datetime.js'
import { MessageValidationError } from '../core/errors.js'
import { RawJson } from '../core/json.js'
import { revisionOf, type CqrsMessage } from '../core/message.js'
import type { ApplyOp, TableTarget, TargetColumn } from './apply-op.js'

/** Keys of `instance_data` that are the version, not columns. */
export const RESERVED = new Set(['cqrs_revision', 'cqrs_updated'])

/** A value that does not fit its column, with the message's evidence. */
export function columnValueError(e: unknown, target: TableTarget, pkKey: string, col: TargetColumn): MessageValidationError {
  return new MessageValidationError(`${(e as Error).message} (cqrs_id '${target.cqrsId}', pk ${pkKey}, replica column ${target.table}.${col.column})`)
}

/** A required column the row leaves out (`missing`) or sets to null. */
export function requiredColumnError(target: TableTarget, pkKey: string, col: TargetColumn, how: 'missing' | 'null'): MessageValidationError {
  return new MessageValidationError(
    how === 'missing'
      ? `instance_data of '${target.cqrsId}' pk ${pkKey} lacks '${col.field}', which ${target.table}.${col.column} requires; map it with handlers.${target.cqrsId}.fields or give the column a default`
      : `'${col.field}' is null in '${target.cqrsId}' pk ${pkKey}, but ${target.table}.${col.column} is NOT NULL`,
  )
}

/** Whether a column must be given by every SAVE and SYNC (pk and version columns are given apart). */
export function mustBeGiven(target: TableTarget, col: TargetColumn): boolean {
  return col.required && col !== target.pk && col !== target.revision && col !== target.updated
}

/**
 * The JSON `null` of a NOT NULL Json column. The rule, for every replica path: a JSON `null` lands as
 * SQL NULL in a nullable Json column and as the JSON value `null` in a NOT NULL one (where SQL NULL
 * could not go). Writers see a RawJson and write its text.
 */
export const JSON_NULL = new RawJson('null')

/** A wire value decoded for its replica column ({@link decodeValue}, plus the JSON null rule). */
export function decodeColumn(col: TargetColumn, v: unknown, key: string): unknown {
  if (v === null && col.kind === 'Json' && col.required) return JSON_NULL
  return decodeValue(col.kind, v, key)
}

/** Per target, the columns toApplyOp checks after the values (every row must give them, or they are NOT NULL), in byKey order. */
const checks = new WeakMap<TableTarget, Array<{ col: TargetColumn; given: boolean }>>()
function checksOf(target: TableTarget): Array<{ col: TargetColumn; given: boolean }> {
  let c = checks.get(target)
  if (!c) checks.set(target, (c = [...target.byKey.values()].filter((col) => col.required).map((col) => ({ col, given: mustBeGiven(target, col) }))))
  return c
}

/** A message made ready for its table: values decoded to column types, checked, keyed by column. */
export function toApplyOp(target: TableTarget, m: CqrsMessage, force = false): ApplyOp {
  const data = m.instance_data
  const pk = decodeValue(target.pk.kind, m.instance_pk ?? data.id, 'instance_pk')
  if (pk === null) throw new MessageValidationError(`message for '${m.cqrs_id}' has no primary key (instance_pk)`)
  const updatedRaw = data.cqrs_updated
  const updated = updatedRaw == null ? null : (decodeValue('DateTime', updatedRaw, 'cqrs_updated') as ExactDateTime)
  const op: ApplyOp = { signal: m.signal_type, force, pk, pkKey: String(pk), revision: revisionOf(m), updated, values: new Map() }
  if (m.signal_type === 'DELETE') return op
  // for...in, not Object.entries: this runs for every field of every message (no pair arrays).
  for (const key in data) {
    if (RESERVED.has(key)) continue
    const col = target.byKey.get(key)
    if (!col || col === target.pk) continue // keys the replica does not store are ignored
    try {
      op.values.set(col.column, decodeColumn(col, data[key], key))
    } catch (e) {
      throw columnValueError(e, target, op.pkKey, col)
    }
  }
  for (const { col, given } of checksOf(target)) {
    if (given && !op.values.has(col.column)) throw requiredColumnError(target, op.pkKey, col, 'missing')
    if (op.values.get(col.column) === null) throw requiredColumnError(target, op.pkKey, col, 'null')
  }
  return op
}
