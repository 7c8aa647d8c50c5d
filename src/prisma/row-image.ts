import type { Row } from '../config/master-options.js'
import { ExactDateTime } from '../core/datetime.js'
import { parseJson, RawJson } from '../core/json.js'
import { normalizeDateTime } from '../core/message.js'
import { setExact } from '../master/exact-values.js'
import type { ModelMeta } from './internals.js'

/** What a capture trigger wrote: the operation and the row before and after, keyed by column. */
export interface RowImage {
  op: 'I' | 'U' | 'D'
  new: Row | null
  old: Row | null
  /** The write's correlation id, when the extension set one for the trigger (PostgreSQL and MySQL). */
  cid?: string | null
}

/** An exact decimal with the one method the codec calls (`toFixed()`), like Prisma's Decimal. */
class ExactDecimal {
  constructor(private readonly text: string) {}
  toFixed(): string {
    return this.text
  }
  toString(): string {
    return this.text
  }
}

/** JSON as Prisma would have given it (JSON.parse's numbers), for the serializer's and filter's row. */
const plain = (v: unknown): unknown => {
  if (v instanceof RawJson || typeof v === 'bigint') return Number(v instanceof RawJson ? v.text : v)
  if (Array.isArray(v)) return v.map(plain)
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
  return v
}

const text = (v: unknown) => (v instanceof RawJson ? v.text : String(v))

/** Parse a row image; every number keeps its digits and form (parseJson) until each column's kind says what it is. */
export function parseRowImage(body: string): RowImage {
  return parseJson(body) as RowImage
}

/**
 * A row image (column -> JSON value, as PostgreSQL's row_to_json, MySQL's JSON_OBJECT or SQLite's
 * json_object wrote it) as the row Prisma would have returned: field names, Dates, exact decimals,
 * bigints, Buffers. What a Prisma row cannot hold (microseconds, JSON number forms such as `33.0`) is
 * kept beside it as the row's exact values (see exact-values.ts), which the events are built from.
 */
export function imageToRow(meta: ModelMeta, image: Row): Row {
  const row: Row = {}
  for (const f of meta.fields) {
    const v = image[f.column]
    if (v === null || v === undefined) {
      row[f.name] = null
      continue
    }
    switch (f.kind) {
      case 'DateTime':
      case 'Date': {
        const s = String(v)
        const exact = ExactDateTime.parse(s)
        if (exact) {
          row[f.name] = exact.toDate()
          if (f.kind === 'DateTime') setExact(row, f.name, exact)
          break
        }
        // MySQL writes DATETIME without a zone; Prisma stores UTC there.
        const iso = normalizeDateTime(s.length === 10 ? `${s}T00:00:00Z` : /[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s}Z`)
        row[f.name] = new Date(iso)
        break
      }
      case 'Decimal':
        row[f.name] = new ExactDecimal(text(v))
        break
      case 'BigInt':
        row[f.name] = BigInt(text(v))
        break
      case 'Int':
      case 'Float':
        row[f.name] = Number(text(v))
        break
      case 'Boolean':
        row[f.name] = v === true || text(v) === '1' || v === 't'
        break
      case 'Json':
        // Every dialect's trigger nests JSON columns as JSON (not as text).
        row[f.name] = plain(v)
        setExact(row, f.name, v)
        break
      case 'Bytes': {
        const hex = String(v).replace(/^\\x/, '')
        row[f.name] = Buffer.from(hex, 'hex')
        break
      }
      default:
        row[f.name] = v instanceof RawJson || typeof v === 'bigint' || typeof v === 'number' ? text(v) : v
    }
  }
  return row
}
