/**
 * The content hash of `cqrs diff-master --hash`: master and replica each hash a row over a canonical
 * form of its values, so a row that differs at the same revision (edited by hand on the replica) is
 * found. Both sides canonicalise with the master's kind of each key (named in the diff's spec line), so
 * a replica storing a decimal in a text column still compares by value.
 *
 * Canonical forms: integers and decimals as plain decimal text without leading or trailing zeros
 * (`1.50` = `1.5`, `-0` = `0`, exponents expanded); datetimes as UTC ISO 8601 with every fractional
 * digit and none trailing (microseconds where the value has them); dates `YYYY-MM-DD`; booleans;
 * JSON with sorted keys and canonical numbers (so `33.0` = `33`: the hash compares values, not number
 * forms); SQL NULL and JSON null alike (the wire has one null for both).
 */
import { createHash } from 'node:crypto'
import type { ScalarKind } from './codec.js'
import { ExactDateTime } from './datetime.js'
import { RawJson } from './json.js'

/** Which keys a hashed diff covers and each one's kind on the master, in hash order. */
export type HashedKeys = Array<[key: string, kind: ScalarKind]>

const numberText = (v: unknown): string => (v instanceof RawJson ? v.text : String(v))

/** A decimal number's text in the canonical form above; the text itself when it is not a number. */
export function canonicalDecimal(text: string): string {
  const m = /^\s*([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/.exec(text)
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return text
  let int = m[2]
  let frac = m[3] ?? ''
  const exp = Number(m[4] ?? 0)
  if (exp > 0) {
    int += frac.slice(0, exp).padEnd(exp, '0')
    frac = frac.slice(exp)
  } else if (exp < 0) {
    const shift = -exp
    frac = int.padStart(shift, '0').slice(int.length >= shift ? int.length - shift : 0) + frac
    int = int.length > shift ? int.slice(0, int.length - shift) : ''
  }
  int = int.replace(/^0+/, '') || '0'
  frac = frac.replace(/0+$/, '')
  const abs = frac ? `${int}.${frac}` : int
  return m[1] === '-' && abs !== '0' ? `-${abs}` : abs
}

function canonicalJson(v: unknown): string {
  if (v === null || v === undefined) return 'null'
  if (typeof v === 'number' || typeof v === 'bigint' || v instanceof RawJson) return canonicalDecimal(numberText(v))
  if (typeof v === 'string' || typeof v === 'boolean') return JSON.stringify(v)
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`
  const o = v as Record<string, unknown>
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(',')}}`
}

/**
 * One value in canonical form. `v` is a wire value (what `instance_data` holds) or a replica's text of
 * its column where that is the same thing (decimals, integers, datetimes, dates as text; booleans as
 * `t`/`true`/`1`); a replica reads JSON columns with parseJson and bytes as base64 first.
 */
export function canonicalValue(kind: ScalarKind, v: unknown): string | null {
  if (v === null || v === undefined) return null
  switch (kind) {
    case 'Int':
    case 'BigInt':
    case 'Decimal':
      return canonicalDecimal(numberText(v))
    case 'Float':
      return String(Number(numberText(v)))
    case 'Boolean':
      return String(v === true || v === 1 || v === 't' || v === 'true' || v === '1')
    case 'DateTime': {
      const s = numberText(v)
      return ExactDateTime.parse(s)?.toISOString() ?? s
    }
    case 'Date':
      return String(v).slice(0, 10)
    case 'Json':
      return v === null ? null : canonicalJson(v)
    default:
      return typeof v === 'string' ? v : numberText(v)
  }
}

/** The hash of a row's values (in `keys` order, each canonical): 16 hex digits of SHA-256. */
export function rowHash(keys: HashedKeys, valueOf: (key: string, kind: ScalarKind) => unknown): string {
  const h = createHash('sha256')
  h.update(JSON.stringify(keys.map(([key, kind]) => canonicalValue(kind, valueOf(key, kind)))))
  return h.digest('hex').slice(0, 16)
}
