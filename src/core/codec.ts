import { MessageValidationError } from './errors.js'
import { ExactDateTime } from './datetime.js'
import { RawJson } from './json.js'

/** The Prisma scalar kinds the codec knows; `Date` is a DateTime stored as `@db.Date`. */
export type ScalarKind = 'String' | 'Int' | 'BigInt' | 'Float' | 'Decimal' | 'Boolean' | 'DateTime' | 'Date' | 'Json' | 'Bytes' | 'Enum'

const pad = (n: number, w = 2) => String(n).padStart(w, '0')

/** `YYYY-MM-DD` of a Date's UTC date (the replica's SQL writers use it). */
export function formatDate(d: Date): string {
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`
}

/**
 * A decimal's text with exactly `scale` digits after the point, as the column holds it (Prisma's
 * Decimal drops trailing zeros: `0.00` reads back as `0`). Digits past `scale` are kept: a value is
 * never rounded here.
 */
export function withScale(text: string, scale: number | undefined): string {
  if (scale === undefined) return text
  const dot = text.indexOf('.')
  const have = dot === -1 ? 0 : text.length - dot - 1
  if (have >= scale) return text
  return `${text}${dot === -1 && scale > 0 ? '.' : ''}${'0'.repeat(scale - have)}`
}

/** A datetime of the master as the one exact form: a JS Date (milliseconds), database text, or already exact. */
function exactDateTime(v: unknown): ExactDateTime {
  if (v instanceof ExactDateTime) return v
  if (v instanceof Date) return ExactDateTime.fromDate(v)
  const parsed = typeof v === 'string' ? ExactDateTime.parse(v) : null
  if (!parsed) throw new TypeError(`cannot send ${String(v)} as a datetime: give a Date, an ExactDateTime or datetime text`)
  return parsed
}

/**
 * Master side: a value of the master's row to its wire form. Datetimes go out in django-cqrs's form
 * through {@link ExactDateTime#toWire} (every path, one formatter); decimals with the column's
 * `scale` when it is known.
 */
export function encodeValue(kind: ScalarKind, v: unknown, scale?: number): unknown {
  if (v === null || v === undefined) return null
  switch (kind) {
    case 'DateTime':
      return exactDateTime(v).toWire()
    case 'Date':
      return exactDateTime(v).toDateOnly()
    case 'Decimal':
      // Prisma's Decimal (decimal.js): toFixed() never uses exponent notation.
      return new RawJson(withScale(v instanceof RawJson ? v.text : (v as { toFixed(): string }).toFixed(), scale))
    case 'Bytes':
      return Buffer.from(v as Uint8Array).toString('base64')
    default:
      return v
  }
}

// A function of its own, not a closure per call: decodeValue runs for every field of every row.
function badValue(field: string, v: unknown, want: string): never {
  throw new MessageValidationError(`field '${field}' must be ${want}; got ${JSON.stringify(typeof v === 'bigint' ? v.toString() : v)}`)
}

/**
 * Replica side: a wire value to the exact form every replica writer takes for a field of `kind`:
 * DateTime an {@link ExactDateTime} (every fractional digit), Date `YYYY-MM-DD`, Decimal its digits as
 * written, BigInt a bigint, Float a number, Json the value with {@link RawJson} numbers kept, Bytes a
 * Buffer. No value goes through a JavaScript Date or a double on the way, except Float, which is one.
 */
export function decodeValue(kind: ScalarKind, v: unknown, field: string): unknown {
  if (v === null || v === undefined) return null
  switch (kind) {
    case 'DateTime': {
      // A date alone is its UTC midnight (a master's date field into a replica datetime, as on SQLite).
      const d = typeof v === 'string' ? ExactDateTime.parse(ExactDateTime.isDate(v) ? `${v} 00:00:00` : v) : null
      return d ?? badValue(field, v, 'a datetime string (ISO 8601 or "YYYY-MM-DD HH:MM:SS[.ffffff]+00:00")')
    }
    case 'Date': {
      if (typeof v === 'string' && ExactDateTime.isDate(v)) return v
      // A datetime for a date column: its UTC date, as a master with a datetime field would mean it.
      const d = typeof v === 'string' ? ExactDateTime.parse(v) : null
      return d ? d.toDateOnly() : badValue(field, v, 'a date string ("YYYY-MM-DD")')
    }
    case 'Int':
      if (typeof v === 'number' && Number.isInteger(v)) return v
      if (v instanceof RawJson && /^-?\d+(\.0*)?$/.test(v.text)) return Number.parseInt(v.text, 10)
      return badValue(field, v, 'an integer')
    case 'BigInt':
      if (typeof v === 'bigint') return v
      if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v)
      if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v)
      if (v instanceof RawJson && /^-?\d+(\.0*)?$/.test(v.text)) return BigInt(v.text.replace(/\..*/, ''))
      return badValue(field, v, 'an integer')
    case 'Float':
      if (typeof v === 'number') return v
      if (v instanceof RawJson || typeof v === 'bigint') return Number(v instanceof RawJson ? v.text : v)
      return badValue(field, v, 'a number')
    case 'Decimal':
      // The digits as written: parseJson keeps a decimal JSON.parse would round as RawJson.
      if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v)
      if (typeof v === 'bigint') return String(v)
      if (v instanceof RawJson) return v.text
      if (typeof v === 'string' && DECIMAL_TEXT.test(v.trim())) return v.trim()
      return badValue(field, v, 'a decimal number')
    case 'Boolean':
      return typeof v === 'boolean' ? v : badValue(field, v, 'a boolean')
    case 'String':
    case 'Enum':
      return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? String(v) : v instanceof RawJson ? v.text : badValue(field, v, 'a string')
    case 'Bytes':
      return typeof v === 'string' && BASE64.test(v) ? Buffer.from(v, 'base64') : badValue(field, v, 'a base64 string')
    case 'Json':
      return v
  }
}

const DECIMAL_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/
const BASE64 = /^[A-Za-z0-9+/\s]*={0,2}$/
