import { isLosslessNumber, parse as losslessParse } from 'lossless-json'
import type { Row } from '../config/master-options.js'
import { normalizeDateTime } from '../core/message.js'
import type { ModelMeta } from './internals.js'

/** What a capture trigger wrote: the operation and the row before and after, keyed by column. */
export interface RowImage {
  op: 'I' | 'U' | 'D'
  new: Row | null
  old: Row | null
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

const plain = (v: unknown): unknown => {
  if (isLosslessNumber(v)) return Number((v as { value: string }).value)
  if (Array.isArray(v)) return v.map(plain)
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
  return v
}

const text = (v: unknown) => (isLosslessNumber(v) ? (v as { value: string }).value : String(v))

/** Parse a row image; numbers stay exact until each column's kind says what they are. */
export function parseRowImage(body: string): RowImage {
  return losslessParse(body) as RowImage
}

/**
 * A row image (column -> JSON value, as PostgreSQL's row_to_json, MySQL's JSON_OBJECT or SQLite's
 * json_object wrote it) as the row Prisma would have returned: field names, Dates, exact decimals,
 * bigints, Buffers.
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
        break
      case 'Bytes': {
        const hex = String(v).replace(/^\\x/, '')
        row[f.name] = Buffer.from(hex, 'hex')
        break
      }
      default:
        row[f.name] = isLosslessNumber(v) ? text(v) : v
    }
  }
  return row
}
