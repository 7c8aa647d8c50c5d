/**
 * bulk-load on PostgreSQL: dump rows straight to COPY text (no ApplyOp per row), COPY straight into
 * the table where the gate is open for every row of a batch, else into a stage table and one
 * version-gated upsert ({@link pgLoadPlan}). Node's per-row work is half a load's CPU, so the common
 * values (integers, strings, booleans, UTC datetimes as the wire writes them) are written as they
 * came, bytes to bytes on the hot path; anything else goes through the replica's decoder, so a value
 * is accepted or refused here exactly as a consumed SYNC would be, with the same message.
 */
import { isUtf8 } from 'node:buffer'
import { decodeValue } from '../core/codec.js'
import { ByteLine, LineError, parseDumpLine, type Line } from '../core/dump-format.js'
import { MessageValidationError } from '../core/errors.js'
import { stringifyJson } from '../core/json.js'
import type { TableTarget, TargetColumn } from '../replica/apply-op.js'
import { columnValueError, decodeColumn, mustBeGiven, requiredColumnError, RESERVED } from '../replica/decode-op.js'
import { pkKeyOf, pkKeys, type DumpRow } from '../replica/load.js'
import type { LoadCount } from '../replica/replica-store.js'
import { copyEscape, copyValue, pgLoadPlan, tableColumns, type Statement } from './replica-sql.js'
import { quoteIdent } from './sql.js'
import type { SqlRunner } from './sql-runner.js'

// The datetime forms PostgreSQL reads as the same instant into timestamp and timestamptz alike: UTC,
// with at most microseconds (a `timestamp` column ignores the offset, so only +00:00 or Z pass).
const UTC_DATETIME = /^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d{1,6})?(\+00:00|Z)$/
const PLAIN_DATE = /^\d{4}-\d\d-\d\d$/
const COPY_SPECIAL = /[\\\n\r\t]/

const enum Role {
  Column,
  Revision,
}

/** A dump key as the fast path sees it: its quoted text, its pk rank, the column it feeds (if any). */
interface KeyInfo {
  quoted: string
  rank: number
  role: Role
  col: TargetColumn | undefined
  index: number
}

/** The given values of a row, tab-separated. */
function rowText(values: Array<string | undefined>, full: boolean): string {
  if (full) return values.join('\t')
  let out: string | undefined
  for (const v of values) if (v !== undefined) out = out === undefined ? v : `${out}\t${v}`
  return out ?? ''
}

/** A row as COPY text, with what the batch needs to keep one row per pk. */
interface TextRow {
  pkKey: string
  revision: number
  /** Which columns the row gives: rows are copied in groups of one shape ({@link PgRowEncoder.columns}). */
  shape: string
  /** The given columns' COPY text, tab-separated. */
  text: string
}

/** A row encoded into its shape's {@link CopyBuffer}: its COPY text is bytes [start, end), a line end at `end`. */
export interface EncodedRow {
  pkKey: string
  revision: number
  shape: string
  start: number
  end: number
}

export class PgRowEncoder {
  /** pk, data columns, updated, revision: every column a row can write, in one order. */
  private readonly cols: TargetColumn[]
  private readonly colIndex = new Map<string, number>()
  private readonly pkKeys: string[]
  /** Dump key -> its place in {@link pkKeys} (the first non-null one gives the pk). */
  private readonly pkRank: Map<string, number>
  private readonly mustGive: number[]
  private readonly mustGiveMask: number
  private readonly fullMask: number
  private readonly pkAt: number
  private readonly revisionAt: number
  private readonly updatedAt: number
  private readonly fastPk: boolean
  private layout: RowLayout | undefined
  private learned = 0
  private readonly numericPk: boolean
  private readonly keys = new Map<string, KeyInfo>()
  /** The keys in the order the last rows had them. */
  private readonly order: KeyInfo[] = []
  private readonly shapes = new Map<number, string>()
  /** A packed array of undefined, one per column: each row's values start as a copy. */
  private readonly blank: undefined[]

  constructor(private readonly target: TableTarget) {
    this.cols = tableColumns(target)
    this.cols.forEach((c, i) => this.colIndex.set(c.column, i))
    this.blank = new Array(this.cols.length).fill(undefined)
    this.pkKeys = pkKeys(target)
    this.pkRank = new Map(this.pkKeys.map((k, i) => [k, i]))
    this.mustGive = this.cols.flatMap((c, i) => (mustBeGiven(target, c) ? [i] : []))
    this.mustGiveMask = this.mustGive.reduce((m, i) => m | (1 << i), 0)
    this.fullMask = this.cols.length > 30 ? 0 : (1 << this.cols.length) - 1
    this.pkAt = this.colIndex.get(target.pk.column)!
    this.revisionAt = this.colIndex.get(target.revision.column)!
    this.updatedAt = target.updated ? this.colIndex.get(target.updated.column)! : -1
    // Kinds whose key (`String(decoded pk)`) the fast path knows from the text.
    this.fastPk = target.pk.kind === 'Int' || target.pk.kind === 'BigInt' || target.pk.kind === 'String'
    this.numericPk = target.pk.kind === 'Int' || target.pk.kind === 'BigInt'
  }

  /**
   * Whether pk key `a` sorts after `b`, in an order where no two pks are equal (numbers for integer
   * pks, code units for the rest): a batch whose pks only rise holds each pk once.
   */
  after(a: string, b: string): boolean {
    if (!this.numericPk) return a > b
    // Integer keys as written by String(): a longer one is larger unless negative.
    const na = a.charCodeAt(0) === 45
    const nb = b.charCodeAt(0) === 45
    if (na !== nb) return nb
    if (a.length !== b.length) return na ? a.length < b.length : a.length > b.length
    return na ? a < b : a > b
  }

  /** Columns of a shape. */
  columns(shape: string): TargetColumn[] {
    // A layout's shape lists its columns' indexes in its order ({@link RowLayout}).
    if (shape.startsWith(LAYOUT_SHAPE)) return shape.slice(LAYOUT_SHAPE.length).split(',').map((i) => this.cols[Number(i)])
    return this.cols.filter((_, i) => shape.charCodeAt(i) === 49)
  }

  /** The target's column at index `i` of {@link tableColumns}, and what the layout path needs of the table. */
  layoutFacts(): { cols: TargetColumn[]; pkAt: number; revisionAt: number; updatedAt: number; mustGive: number[]; pkKeys: Map<string, number> } {
    return { cols: this.cols, pkAt: this.pkAt, revisionAt: this.revisionAt, updatedAt: this.updatedAt, mustGive: this.mustGive, pkKeys: this.pkRank }
  }

  /**
   * One dump line into `batch`: by the hot path where it is laid out as the lines before
   * ({@link RowLayout}), else straight from its JSON text where every value is of a common form (no
   * object per row, numbers exact as written), else parsed and decoded ({@link encodeParsed}). Throws a
   * {@link LineError} saying what is wrong with the line; nothing of it is then in `batch`.
   */
  encode(line: Line, batch: CopyBatch): EncodedRow {
    const { bytes, start, end } = line instanceof ByteLine ? line : bytesOf(line.text)
    if (this.layout) {
      const r = this.layout.encode(bytes, start, end, batch.of(this.layout.shape))
      if (r) return r
    }
    const s = line.text
    const r = this.encodeFast(s)
    if (!r) return batch.add(this.encodeParsed({ line: line.line, data: parseDumpLine(line) }))
    if (this.learned < MAX_LAYOUTS) this.learn(bytes, start, end)
    return batch.add(r)
  }

  /**
   * Learn the layout of a line the fast path took ({@link RowLayout}): where it has one key for the
   * pk, no key twice, no escape and no space outside its strings (as a dump we wrote). A new layout
   * replaces the last; after {@link MAX_LAYOUTS} the fast path alone goes on (rows of many layouts).
   */
  private learn(b: Buffer, start: number, end: number): void {
    this.learned++
    const keys: KeyInfo[] = []
    if (b[start] !== 123) return
    for (let i = start + 1; ; ) {
      if (b[i] !== 34) return
      const ke = stringEnd(b, i, end)
      if (ke < 0 || b[ke] !== 58) return
      keys.push(this.keyInfo(b.toString('utf8', i + 1, ke - 1)))
      const e = valueEnd(b, ke + 1, end)
      if (e < 0) return
      if (b[e] === 125) {
        if (e + 1 !== end) return
        break
      }
      if (b[e] !== 44) return
      i = e + 1
    }
    this.layout = RowLayout.of(this, keys)
  }

  /**
   * The fast path: walk the line's JSON text once, taking each value's text as it is where its column
   * reads it unchanged. Null for anything else (a form it does not take, a bad line, a missing or null
   * required value), so the parsed path decides, and words the error.
   */
  encodeFast(s: string): TextRow | null {
    const t = this.target
    if (this.cols.length > 30) return null // the shape is a 31-bit mask
    const values: Array<string | undefined> = this.blank.slice()
    let mask = 0
    if (this.updatedAt >= 0) {
      values[this.updatedAt] = '\\N' // as the parsed path: no cqrs_updated, NULL
      mask |= 1 << this.updatedAt
    }
    let revision = 0
    let pkRank = Infinity
    let pkText: string | undefined
    let i = skipWs(s, 0)
    if (s.charCodeAt(i) !== 123) return null
    i = skipWs(s, i + 1)
    if (s.charCodeAt(i) === 125) return null
    for (let pos = 0; ; pos++) {
      if (s.charCodeAt(i) !== 34) return null
      // Rows of one dump have their keys in one order: check the expected key before looking one up.
      let key = this.order[pos]
      if (key !== undefined && s.startsWith(key.quoted, i)) i += key.quoted.length
      else {
        const ke = s.indexOf('"', i + 1)
        if (ke < 0) return null
        const name = s.slice(i + 1, ke)
        if (name.includes('\\')) return null
        key = this.keyInfo(name)
        this.order[pos] = key
        i = ke + 1
      }
      i = skipWs(s, i)
      if (s.charCodeAt(i) !== 58) return null
      i = skipWs(s, i + 1)
      const c = s.charCodeAt(i)
      let tok: Tok
      let text: string
      if (c === 34) {
        const e = textStringEnd(s, i)
        if (e < 0) return null
        text = s.slice(i + 1, e - 1)
        tok = Tok.Str
        if (text.includes('\\')) {
          tok = Tok.EscStr
          text = s.slice(i, e)
        }
        i = e
      } else if (c === 123 || c === 91) {
        const e = textNestedEnd(s, i)
        if (e < 0) return null
        text = s.slice(i, e)
        tok = Tok.Nested
        i = e
      } else {
        let e = i
        for (let d = c; e < s.length && d !== 44 && d !== 125 && d !== 32 && d !== 9 && d !== 10 && d !== 13; d = s.charCodeAt(++e));
        text = s.slice(i, e)
        if (text === 'true') tok = Tok.True
        else if (text === 'false') tok = Tok.False
        else if (text === 'null') tok = Tok.Null
        else if ((c >= 48 && c <= 57) || c === 45) tok = Tok.Num // checked where it is used
        else return null
        i = e
      }
      if (key.rank < pkRank && tok !== Tok.Null) {
        pkText = this.fastPk && tok !== Tok.Nested ? tokenText(t.pk, tok, text) : undefined
        if (pkText === undefined) return null
        pkRank = key.rank
      }
      if (key.role === Role.Revision) {
        if (tok === Tok.Num && INT_TEXT.test(text)) revision = Number(text)
        else if (tok !== Tok.Null) return null
      } else if (key.col === undefined) {
        if (tok === Tok.Num && !NUMBER_TEXT.test(text)) return null
      } else {
        const v = tokenText(key.col, tok, text)
        if (v === undefined || (v === '\\N' && key.col.required)) return null
        values[key.index] = v
        mask |= 1 << key.index
      }
      i = skipWs(s, i)
      const d = s.charCodeAt(i)
      if (d === 44) i = skipWs(s, i + 1)
      else if (d === 125 && skipWs(s, i + 1) === s.length) break
      else return null
    }
    if (pkText === undefined) return null
    values[this.pkAt] = pkText
    values[this.revisionAt] = String(revision)
    mask |= (1 << this.pkAt) | (1 << this.revisionAt)
    if ((mask & this.mustGiveMask) !== this.mustGiveMask) return null
    let shape = this.shapes.get(mask)
    if (shape === undefined) this.shapes.set(mask, (shape = shapeOf(values)))
    return { pkKey: this.target.pk.kind === 'String' ? unescapeCopy(pkText) : pkText, revision, shape, text: rowText(values, mask === this.fullMask) }
  }

  /** What the fast path does with a key, learned once per key. */
  private keyInfo(name: string): KeyInfo {
    let info = this.keys.get(name)
    if (info) return info
    const t = this.target
    const rank = this.pkRank.get(name) ?? Infinity
    const quoted = `"${name}"`
    if (name === 'cqrs_revision') info = { quoted, rank, role: Role.Revision, col: undefined, index: -1 }
    else if (name === 'cqrs_updated') info = { quoted, rank, role: Role.Column, col: t.updated ?? undefined, index: this.updatedAt }
    else {
      const col = t.byKey.get(name)
      info = col && col !== t.pk ? { quoted, rank, role: Role.Column, col, index: this.colIndex.get(col.column)! } : { quoted, rank, role: Role.Column, col: undefined, index: -1 }
    }
    if (this.keys.size < 10_000) this.keys.set(name, info)
    return info
  }

  /** A parsed row: values decoded as a consumed SYNC's would be. */
  encodeParsed(row: DumpRow): TextRow {
    const t = this.target
    const data = row.data
    try {
      const rawPk = data[pkKeyOf(this.pkKeys, row)]
      const values: Array<string | undefined> = new Array(this.cols.length)
      const pk = decodeValue(t.pk.kind, rawPk, 'instance_pk')
      const pkKey = String(pk)
      values[this.colIndex.get(t.pk.column)!] = copyText(t.pk, pk, 'instance_pk')
      const revision = data.cqrs_revision ?? 0
      if (typeof revision !== 'number' || !Number.isInteger(revision)) throw new MessageValidationError(`field 'cqrs_revision' must be an integer; got ${stringifyJson(revision)}`)
      values[this.colIndex.get(t.revision.column)!] = String(revision)
      if (t.updated) values[this.colIndex.get(t.updated.column)!] = copyText(t.updated, data.cqrs_updated, 'cqrs_updated')
      for (const key in data) {
        if (RESERVED.has(key)) continue
        const col = t.byKey.get(key)
        if (!col || col === t.pk) continue // keys the replica does not store are ignored
        let text: string
        try {
          text = copyText(col, data[key], key)
        } catch (e) {
          throw columnValueError(e, t, pkKey, col)
        }
        if (text === '\\N' && col.required) throw requiredColumnError(t, pkKey, col, 'null')
        values[this.colIndex.get(col.column)!] = text
      }
      for (const i of this.mustGive) if (values[i] === undefined) throw requiredColumnError(t, pkKey, this.cols[i], 'missing')
      return { pkKey, revision, shape: shapeOf(values), text: rowText(values, false) }
    } catch (e) {
      throw e instanceof LineError ? e : new LineError(row.line, (e as Error).message)
    }
  }
}

const MAX_LAYOUTS = 100
const LAYOUT_SHAPE = 'L'

const enum Parse {
  Int,
  BigInt,
  Number,
  Boolean,
  String,
  DateTime,
  Date,
  Json,
  Pk,
  Revision,
  Skip,
}

interface Step {
  /** The bytes before the value: the key, quoted, and its colon (after a comma but for the first). */
  prefix: Buffer
  parse: Parse
  col: TargetColumn | undefined
  /** A JSON null as COPY text (the JSON null rule), or undefined where the column refuses a null. */
  nullText: Buffer | undefined
}

/**
 * The hot path of a load: rows laid out as one row the fast path took (the same keys in the same
 * order, compact, no escapes: every line of a dump we wrote), read as the bytes they came in, by
 * comparing each key's bytes where they are expected and checking each value's form by its column's
 * kind, and written on to the COPY bytes as they are (a dump's values in these forms are COPY text
 * already): no decoding, no string per value, no token classification, no key lookups. The COPY
 * columns follow the dump's key order (the shape lists them). It takes a subset of what
 * {@link PgRowEncoder.encodeFast} takes and gives the same value per column (a unit test compares
 * them); null for any other line, which the fast path then reads.
 */
class RowLayout {
  /** The COPY values after the steps' values (`\\N` time, revision 0: keys the row does not give), each after a tab. */
  private readonly tail: Buffer

  private constructor(
    private readonly steps: Step[],
    readonly shape: string,
    tail: string[],
    private readonly pkString: boolean,
  ) {
    this.tail = Buffer.from(tail.map((v) => `\t${v}`).join(''))
  }

  static of(enc: PgRowEncoder, keys: KeyInfo[]): RowLayout | undefined {
    const f = enc.layoutFacts()
    const order: number[] = []
    const steps: Step[] = []
    let pk = 0
    let hasRevision = false
    for (const k of keys) {
      if (k.rank !== Infinity && k.col !== undefined) return undefined // a pk key that is also a column: the fast path
      const prefix = Buffer.from(`${steps.length ? ',' : ''}${k.quoted}:`)
      if (k.rank !== Infinity) {
        if (pk++) return undefined // several pk keys: the first non-null decides, the fast path does that
        steps.push({ prefix, parse: Parse.Pk, col: f.cols[f.pkAt], nullText: undefined })
        order.push(f.pkAt)
      } else if (k.role === Role.Revision) {
        steps.push({ prefix, parse: Parse.Revision, col: undefined, nullText: undefined })
        order.push(f.revisionAt)
        hasRevision = true
      } else if (k.col === undefined) steps.push({ prefix, parse: Parse.Skip, col: undefined, nullText: undefined })
      else {
        const parse = PARSE_OF[k.col.kind]
        if (parse === undefined) return undefined
        let nullText: string | undefined
        try {
          nullText = tokenText(k.col, Tok.Null, 'null')
        } catch {
          return undefined
        }
        steps.push({ prefix, parse, col: k.col, nullText: nullText === undefined || (nullText === '\\N' && k.col.required) ? undefined : Buffer.from(nullText) })
        order.push(k.index)
      }
    }
    if (!pk) return undefined
    const tail: string[] = []
    if (f.updatedAt >= 0 && !order.includes(f.updatedAt)) {
      order.push(f.updatedAt)
      tail.push('\\N')
    }
    if (!hasRevision) {
      order.push(f.revisionAt)
      tail.push('0')
    }
    if (new Set(order).size !== order.length || f.mustGive.some((i) => !order.includes(i))) return undefined
    const pkKind = f.cols[f.pkAt].kind
    if (pkKind !== 'Int' && pkKind !== 'BigInt' && pkKind !== 'String') return undefined
    return new RowLayout(steps, `${LAYOUT_SHAPE}${order.join(',')}`, tail, pkKind === 'String')
  }

  /** The line b[start, end) as a COPY line at the end of `out`, or null (`out` as it was). */
  encode(b: Buffer, start: number, end: number, out: CopyBuffer): EncodedRow | null {
    if (b[start] !== 123) return null
    // A value's COPY text is no longer than its key and JSON text, but for a null's: twice the line is room enough.
    out.ensure(2 * (end - start) + this.tail.length + 16)
    const o = out.buf
    const rowStart = out.length
    let p = rowStart
    let i = start + 1
    let pkKey = ''
    let revision = 0
    const steps = this.steps
    for (let n = 0; n < steps.length; n++) {
      const st = steps[n]
      const pre = st.prefix
      // The byte at `end` is a line end or past the chunk, which no prefix holds: no compare runs past the line.
      for (let k = 0; k < pre.length; k++) if (b[i + k] !== pre[k]) return null
      i += pre.length
      let e: number
      const c = b[i]
      if (c === 110 /* n */) {
        // null: the column's NULL (the JSON null rule); a null pk, revision or required value goes to the fast path
        if (b[i + 1] !== 117 || b[i + 2] !== 108 || b[i + 3] !== 108) return null
        e = i + 4
        if (st.parse !== Parse.Skip) {
          if (st.nullText === undefined || st.parse === Parse.Pk || st.parse === Parse.Revision) return null
          p = put(o, p, st.nullText, 0, st.nullText.length)
        }
      } else {
        switch (st.parse) {
          case Parse.Int:
          case Parse.BigInt:
          case Parse.Revision:
            e = intEnd(b, i, st.parse === Parse.BigInt ? Infinity : 15)
            if (e < 0) return null
            if (st.parse === Parse.Revision) revision = intValue(b, i, e)
            p = put(o, p, b, i, e)
            break
          case Parse.Pk:
            if (this.pkString) {
              if (c !== 34) return null
              e = stringEnd(b, i, end)
              if (e < 0) return null
              pkKey = b.toString('utf8', i + 1, e - 1)
              p = put(o, p, b, i + 1, e - 1)
            } else {
              e = intEnd(b, i, st.col!.kind === 'Int' ? 15 : Infinity)
              if (e < 0) return null
              pkKey = b.toString('latin1', i, e)
              p = put(o, p, b, i, e)
            }
            break
          case Parse.Number:
            e = numberEnd(b, i)
            if (e < 0) return null
            p = put(o, p, b, i, e)
            break
          case Parse.Boolean:
            if (c === 116 && b[i + 1] === 114 && b[i + 2] === 117 && b[i + 3] === 101) (o[p++] = 116 /* t */), (e = i + 4)
            else if (c === 102 && b[i + 1] === 97 && b[i + 2] === 108 && b[i + 3] === 115 && b[i + 4] === 101) (o[p++] = 102 /* f */), (e = i + 5)
            else return null
            break
          case Parse.String:
            if (c !== 34) return null
            e = stringEnd(b, i, end)
            if (e < 0) return null
            p = put(o, p, b, i + 1, e - 1)
            break
          case Parse.DateTime:
            if (c !== 34) return null
            e = stringEnd(b, i, end)
            if (e < 0 || !isUtcDateTime(b, i + 1, e - 1)) return null
            p = put(o, p, b, i + 1, e - 1)
            break
          case Parse.Date:
            if (c !== 34 || b[i + 11] !== 34 || !isPlainDate(b, i + 1)) return null
            e = i + 12
            p = put(o, p, b, i + 1, i + 11)
            break
          case Parse.Json:
            // The value's JSON text as it came (the database parses it): strings keep their quotes.
            e = c === 123 || c === 91 ? nestedEnd(b, i, end) : c === 34 ? stringEnd(b, i, end) : literalEnd(b, i)
            if (e < 0) return null
            p = put(o, p, b, i, e)
            break
          default:
            // A key the replica does not store: skipped, but its value must be one (a number a number, as the fast path checks).
            e = valueEnd(b, i, end)
            if (e < 0) return null
        }
      }
      const d = b[e]
      if (d !== 44 && d !== 125) return null
      if (st.parse !== Parse.Skip) o[p++] = 9 // tab
      i = e
    }
    if (i + 1 !== end || b[i] !== 125) return null
    p-- // the last value's tab: the tail's values (each after a tab) or the line end follow
    p = put(o, p, this.tail, 0, this.tail.length)
    o[p] = 10
    out.length = p + 1
    return { pkKey, revision, shape: this.shape, start: rowStart, end: p }
  }
}

/** Copies b[from, to) to o at p; the index past it. Runs of a value's length byte by byte: Buffer.copy's checks cost more than them. */
function put(o: Buffer, p: number, b: Buffer, from: number, to: number): number {
  if (to - from > 256) return p + b.copy(o, p, from, to)
  for (let j = from; j < to; j++) o[p++] = b[j]
  return p
}

/** COPY text being written, as bytes: one per shape of a batch ({@link CopyBatch}). */
export class CopyBuffer {
  buf: Buffer
  length = 0

  constructor(size = 1 << 16) {
    this.buf = Buffer.allocUnsafe(size)
  }

  /** Room for `n` more bytes. */
  ensure(n: number): void {
    if (this.length + n <= this.buf.length) return
    const b = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n))
    this.buf.copy(b, 0, 0, this.length)
    this.buf = b
  }

  write(s: string): void {
    this.ensure(s.length * 3)
    this.length += this.buf.write(s, this.length)
  }

  bytes(): Buffer {
    return this.buf.subarray(0, this.length)
  }
}

/** The COPY text of a batch being encoded, per shape: the rows of a shape are COPYed together. */
export class CopyBatch {
  private readonly shapes = new Map<string, CopyBuffer>()

  /** `size`: bytes for the first shape's buffer (most batches have one shape): the batch's lines fit in it, grown in one piece. */
  constructor(private size = 1 << 16) {}

  /** The COPY buffer of a shape. */
  of(shape: string): CopyBuffer {
    let out = this.shapes.get(shape)
    if (!out) {
      this.shapes.set(shape, (out = new CopyBuffer(this.size)))
      this.size = 1 << 16
    }
    return out
  }

  /** A row's text (`values` tab-separated) as a COPY line of its shape. */
  add(r: TextRow): EncodedRow {
    const out = this.of(r.shape)
    const start = out.length
    out.write(r.text)
    const end = out.length
    out.write('\n')
    return { pkKey: r.pkKey, revision: r.revision, shape: r.shape, start, end }
  }

  /** A row's COPY text (tests). */
  text(r: EncodedRow): string {
    return this.of(r.shape).buf.toString('utf8', r.start, r.end)
  }
}

const PARSE_OF: Partial<Record<TargetColumn['kind'], Parse>> = {
  Int: Parse.Int,
  BigInt: Parse.BigInt,
  Float: Parse.Number,
  Decimal: Parse.Number,
  Boolean: Parse.Boolean,
  String: Parse.String,
  Enum: Parse.String,
  DateTime: Parse.DateTime,
  Date: Parse.Date,
  Json: Parse.Json,
}

const isDigit = (c: number) => c >= 48 && c <= 57

/** The end of an integer at `i` written as String(Number(text)) writes it (INT_TEXT, BIGINT_TEXT), or -1. */
function intEnd(b: Buffer, i: number, maxDigits: number): number {
  let j = b[i] === 45 ? i + 1 : i
  const first = j
  if (b[j] === 48) return isDigit(b[j + 1]) || j !== i ? -1 : j + 1
  while (isDigit(b[j])) j++
  return j === first || j - first > maxDigits ? -1 : j
}

/** The value of the integer b[i, e) that {@link intEnd} took with at most 15 digits (exact as a double). */
function intValue(b: Buffer, i: number, e: number): number {
  const neg = b[i] === 45
  let v = 0
  for (let j = neg ? i + 1 : i; j < e; j++) v = v * 10 + b[j] - 48
  return neg ? -v : v
}

/** The end of a JSON number at `i` (NUMBER_TEXT), or -1. */
function numberEnd(b: Buffer, i: number): number {
  let j = b[i] === 45 ? i + 1 : i
  if (b[j] === 48) j++
  else if (isDigit(b[j])) while (isDigit(b[j])) j++
  else return -1
  if (b[j] === 46) {
    const f = ++j
    while (isDigit(b[j])) j++
    if (j === f) return -1
  }
  const x = b[j]
  if (x === 101 || x === 69) {
    j++
    const y = b[j]
    if (y === 43 || y === 45) j++
    const f = j
    while (isDigit(b[j])) j++
    if (j === f) return -1
  }
  return j
}

/** The end of `true`, `false` or a JSON number at `i`, or -1 (a null is read before). */
function literalEnd(b: Buffer, i: number): number {
  const c = b[i]
  if (c === 116) return b[i + 1] === 114 && b[i + 2] === 117 && b[i + 3] === 101 ? i + 4 : -1
  if (c === 102) return b[i + 1] === 97 && b[i + 2] === 108 && b[i + 3] === 115 && b[i + 4] === 101 ? i + 5 : -1
  return numberEnd(b, i)
}

/**
 * The end of a JSON string at `i` (its opening quote) within the line, or -1 where the hot path leaves
 * it to the fast path: an escape, a raw control character (invalid JSON: the parsed path says so), or
 * bytes that are not UTF-8 (a decoder of the text reads them as U+FFFD; so does the fast path).
 */
function stringEnd(b: Buffer, i: number, end: number): number {
  let high = false
  for (let j = i + 1; j < end; j++) {
    const c = b[j]
    if (c === 34) return high && !isUtf8(b.subarray(i + 1, j)) ? -1 : j + 1
    if (c < 32 || c === 92) return -1
    if (c > 127) high = true
  }
  return -1
}

/**
 * The end of an object or array at `i` within the line (strings inside as {@link stringEnd} takes
 * them), or -1; its JSON is checked by the database. Raw whitespace other than spaces would need COPY
 * escapes: such values go to the fast path.
 */
function nestedEnd(b: Buffer, i: number, end: number): number {
  let depth = 0
  for (let j = i; j < end; j++) {
    const c = b[j]
    if (c === 34) {
      j = stringEnd(b, j, end) - 1
      if (j < 0) return -1
    } else if (c === 123 || c === 91) depth++
    else if (c === 125 || c === 93) {
      if (--depth === 0) return j + 1
    } else if (c < 32 || c === 92 || c > 127) return -1
  }
  return -1
}

/** The end of any JSON value at `i` as the hot path takes it (a string, nested value or bare token), or -1. */
function valueEnd(b: Buffer, i: number, end: number): number {
  const c = b[i]
  if (c === 34) return stringEnd(b, i, end)
  if (c === 123 || c === 91) return nestedEnd(b, i, end)
  if (c === 110) return b[i + 1] === 117 && b[i + 2] === 108 && b[i + 3] === 108 ? i + 4 : -1
  return literalEnd(b, i)
}

/** `YYYY-MM-DD` at `i` (PLAIN_DATE). */
function isPlainDate(b: Buffer, i: number): boolean {
  return isDigit(b[i]) && isDigit(b[i + 1]) && isDigit(b[i + 2]) && isDigit(b[i + 3]) && b[i + 4] === 45 && isDigit(b[i + 5]) && isDigit(b[i + 6]) && b[i + 7] === 45 && isDigit(b[i + 8]) && isDigit(b[i + 9])
}

/** b[i, end) is a UTC datetime as UTC_DATETIME takes it: `YYYY-MM-DD HH:MM:SS[.ffffff](+00:00|Z)`, T or space. */
function isUtcDateTime(b: Buffer, i: number, end: number): boolean {
  if (!isPlainDate(b, i)) return false
  const t = b[i + 10]
  if (t !== 32 && t !== 84) return false
  if (!isDigit(b[i + 11]) || !isDigit(b[i + 12]) || b[i + 13] !== 58) return false
  if (!isDigit(b[i + 14]) || !isDigit(b[i + 15]) || b[i + 16] !== 58) return false
  if (!isDigit(b[i + 17]) || !isDigit(b[i + 18])) return false
  let j = i + 19
  if (b[j] === 46) {
    const f = ++j
    while (j < end && isDigit(b[j])) j++
    if (j === f || j - f > 6) return false
  }
  return (end - j === 1 && b[j] === 90) || (end - j === 6 && b[j] === 43 && b[j + 1] === 48 && b[j + 2] === 48 && b[j + 3] === 58 && b[j + 4] === 48 && b[j + 5] === 48)
}

const enum Tok {
  Str,
  /** A string with escapes: its text is JSON, not yet the value. */
  EscStr,
  Num,
  True,
  False,
  Null,
  Nested,
}
// Integers as String(Number(text)) writes them back (no -0), so the text is also the pk's key.
const INT_TEXT = /^(0|-?[1-9]\d{0,14})$/
const BIGINT_TEXT = /^(0|-?[1-9]\d*)$/

const NUMBER_TEXT = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/

/** The index past JSON whitespace. */
function skipWs(s: string, i: number): number {
  for (let c = s.charCodeAt(i); c === 32 || c === 9 || c === 10 || c === 13; c = s.charCodeAt(++i));
  return i
}

/** The index past a JSON string whose opening quote is at `i` (escapes skipped), or -1. */
function textStringEnd(s: string, i: number): number {
  for (let j = i + 1; ; ) {
    const q = s.indexOf('"', j)
    if (q < 0) return -1
    let bs = 0
    while (s.charCodeAt(q - 1 - bs) === 92) bs++
    if (bs % 2 === 0) return q + 1
    j = q + 1
  }
}

/** The index past an object or array at `i` (strings inside skipped), or -1; its JSON is checked by the database. */
function textNestedEnd(s: string, i: number): number {
  let depth = 0
  for (let j = i; j < s.length; j++) {
    const c = s.charCodeAt(j)
    if (c === 34) {
      j = textStringEnd(s, j) - 1
      if (j < 0) return -1
    } else if (c === 123 || c === 91) depth++
    else if (c === 125 || c === 93) {
      if (--depth === 0) return j + 1
    }
  }
  return -1
}

/**
 * A token as COPY text for `col`, or undefined where the fast path cannot be sure it reads as
 * {@link decodeValue} would (the row then takes the parsed path).
 */
function tokenText(col: TargetColumn, tok: Tok, text: string): string | undefined {
  if (tok === Tok.Null) return copyValue(col, decodeColumn(col, null, col.field)) // the JSON null rule
  switch (col.kind) {
    case 'Int':
      return tok === Tok.Num && INT_TEXT.test(text) ? text : undefined
    case 'BigInt':
      return tok === Tok.Num && BIGINT_TEXT.test(text) ? text : undefined
    case 'Float':
    case 'Decimal':
      return tok === Tok.Num && NUMBER_TEXT.test(text) ? text : undefined
    case 'Boolean':
      return tok === Tok.True ? 't' : tok === Tok.False ? 'f' : undefined
    case 'String':
    case 'Enum':
      return tok === Tok.Str ? text : tok === Tok.EscStr ? copyEscape(JSON.parse(text) as string) : undefined
    case 'DateTime':
      return tok === Tok.Str && UTC_DATETIME.test(text) ? text : undefined
    case 'Date':
      return tok === Tok.Str && PLAIN_DATE.test(text) ? text : undefined
    case 'Json':
      // The value's JSON text as it came (the database parses it): strings keep their quotes.
      if (tok === Tok.Num && !NUMBER_TEXT.test(text)) return undefined
      return tok === Tok.Str ? `"${text}"` : copyEscape(text)
    default:
      return undefined
  }
}

function shapeOf(values: Array<string | undefined>): string {
  let shape = ''
  for (let i = 0; i < values.length; i++) shape += values[i] === undefined ? '0' : '1'
  return shape
}

const COPY_UNESCAPES: Record<string, string> = { '\\\\': '\\', '\\n': '\n', '\\r': '\r', '\\t': '\t' }

/** COPY text back to the string (the escapes {@link copyEscape} writes). */
function unescapeCopy(text: string): string {
  return text.includes('\\') ? text.replace(/\\[\\nrt]/g, (e) => COPY_UNESCAPES[e]) : text
}

/** A parsed wire value as COPY text for `col`: as it came where PostgreSQL reads it the same, else decoded. */
function copyText(col: TargetColumn, v: unknown, key: string): string {
  if (v === undefined) return '\\N'
  switch (col.kind) {
    case 'Int':
      if (typeof v === 'number' && Number.isInteger(v)) return String(v)
      break
    case 'String':
      if (typeof v === 'string' && !COPY_SPECIAL.test(v)) return v
      break
    case 'Boolean':
      if (typeof v === 'boolean') return v ? 't' : 'f'
      break
    case 'DateTime':
      if (typeof v === 'string' && UTC_DATETIME.test(v)) return v
      break
    case 'Date':
      if (typeof v === 'string' && PLAIN_DATE.test(v)) return v
      break
  }
  return copyValue(col, decodeColumn(col, v, key))
}

/** A line given as text (tests, a caller without bytes) as the bytes the hot path reads. */
function bytesOf(text: string): { bytes: Buffer; start: number; end: number } {
  const bytes = Buffer.from(text)
  return { bytes, start: 0, end: bytes.length }
}

/** A batch encoded for COPY: per shape, its rows (one per pk) and their COPY lines; the lines that could not be read. */
export interface PreparedLoad {
  /** Per shape: its rows, the buffer their COPY lines are in, and whether every line in it is a kept row's. */
  groups: Array<{ shape: string; rows: EncodedRow[]; lines: CopyBuffer; all: boolean }>
  /** The pks of the rows, as tombstones key them. */
  pkKeys: string[]
  /** Lines encoded (duplicates of a pk included). */
  encoded: number
  errors: Array<{ line: number; reason: string }>
}

/**
 * Encode a batch (bad lines become errors, the rest goes on) and keep the newest row per pk (higher
 * revision; at equal revision the later line), grouped by shape. No I/O: the next batch is prepared
 * while the database applies the one before.
 */
export function prepareLoad(encoder: PgRowEncoder, lines: Line[]): PreparedLoad {
  const it = prepareLoadSteps(encoder, lines)
  for (let r = it.next(); ; r = it.next()) if (r.done) return r.value
}

/**
 * {@link prepareLoad}, giving the event loop a turn every {@link ENCODE_SLICE} lines: the batch before
 * this one needs round trips (lock, look-ups, COPY, commit) while this one is encoded, and a batch
 * encoded in one piece held them all back, so Node and PostgreSQL took turns instead of overlapping.
 */
export async function prepareLoadAsync(encoder: PgRowEncoder, lines: Line[]): Promise<PreparedLoad> {
  const it = prepareLoadSteps(encoder, lines)
  for (let r = it.next(); ; r = it.next()) {
    if (r.done) return r.value
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
}

const ENCODE_SLICE = 1000

function* prepareLoadSteps(encoder: PgRowEncoder, lines: Line[]): Generator<void, PreparedLoad> {
  const errors: PreparedLoad['errors'] = []
  // A row's COPY line is shorter than its dump line (keys and quotes left out).
  let bytes = 0
  for (const l of lines) bytes += l instanceof ByteLine ? l.end - l.start : l.text.length
  const batch = new CopyBatch(bytes + 64)
  const rows: EncodedRow[] = []
  // A dump in pk order (ours always is) has no pk twice: rows whose pks only rise need no map.
  let rising = true
  let byPk: Map<string, EncodedRow> | undefined
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]
    if (n > 0 && n % ENCODE_SLICE === 0) yield
    let r: EncodedRow
    try {
      r = encoder.encode(line, batch)
    } catch (e) {
      const le = e as LineError
      errors.push({ line: le.line, reason: le.reason })
      continue
    }
    if (rising && rows.length && !encoder.after(r.pkKey, rows[rows.length - 1].pkKey)) {
      rising = false
      byPk = new Map(rows.map((x) => [x.pkKey, x]))
    }
    if (rising) rows.push(r)
    else {
      const prev = byPk!.get(r.pkKey)
      if (!prev || prev.revision <= r.revision) byPk!.set(r.pkKey, r)
    }
  }
  const kept = rising ? rows : [...byPk!.values()]
  const shapes = new Map<string, EncodedRow[]>()
  for (const r of kept) {
    const g = shapes.get(r.shape)
    if (g) g.push(r)
    else shapes.set(r.shape, [r])
  }
  return {
    groups: [...shapes].map(([shape, rows]) => ({ shape, rows, lines: batch.of(shape), all: rising })),
    pkKeys: kept.map((r) => r.pkKey),
    encoded: lines.length - errors.length,
    errors,
  }
}

/** A group's COPY lines: as encoded, or (where older duplicates were dropped) the kept rows' lines. */
function directCopy(g: PreparedLoad['groups'][number]): Buffer {
  return (g.all ? g.lines : copyOf(g.lines, g.rows, false)).bytes()
}

/** The COPY lines of some rows of `from`: each row's text, then (for the stage) its pk key. */
function copyOf(from: CopyBuffer, rows: EncodedRow[], withKey: boolean): CopyBuffer {
  const out = new CopyBuffer()
  for (const r of rows) {
    out.ensure(r.end - r.start)
    out.length += from.buf.copy(out.buf, out.length, r.start, r.end)
    out.write(withKey ? `\t${copyEscape(r.pkKey)}\n` : '\n')
  }
  return out
}

/** Per target, for the length of a store: whether bulk-load still tries the direct COPY. */
export interface DirectLoadState {
  /** Cleared when a batch met stored rows: the table is not new, later batches go staged at once. */
  tryDirect: boolean
}

/**
 * Apply a prepared batch in one transaction, by the direct COPY where the gate is open for every row,
 * else per shape COPY into the stage and one gated upsert ({@link pgLoadPlan}). Throws if the database
 * refuses the batch; nothing of it is then applied. Null where the runner has no COPY.
 */
export async function applyPreparedLoad(runner: SqlRunner, target: TableTarget, columns: (shape: string) => TargetColumn[], p: PreparedLoad, state: DirectLoadState = { tryDirect: false }): Promise<LoadCount | null> {
  const applied = await runner.transaction(async (tx) => {
    if (!tx.copyIn) return null
    if (state.tryDirect && p.pkKeys.length) {
      const direct = await copyDirect(tx, target, columns, p)
      if (typeof direct === 'number') return direct
      // A tombstone is looked up again by the next batch; a stored row says the table is not new.
      if (direct === 'stored') state.tryDirect = false
    }
    let n = 0
    for (const { shape, rows, lines } of p.groups) {
      const plan = pgLoadPlan(target, columns(shape))
      await tx.execute(plan.create)
      await tx.copyIn(plan.copy, copyOf(lines, rows, true).bytes())
      await tx.execute(plan.lock)
      n += await run(tx, plan.upsert)
      await tx.execute(`DROP TABLE ${quoteIdent('postgresql', plan.stage)}`)
    }
    return n
  })
  if (applied === null) return null
  return { applied, skipped: p.encoded - applied, errors: p.errors.map((e) => new LineError(e.line, e.reason)) }
}

/**
 * The direct path: lock, check that no pk of the batch has a tombstone, COPY every group straight into
 * the table; the rows copied. Where a pk has a tombstone or a stored row (the pk index refuses it),
 * which of the two, with the transaction as it was before (the lock kept): the batch then goes staged.
 */
async function copyDirect(tx: SqlRunner, target: TableTarget, columns: (shape: string) => TargetColumn[], p: PreparedLoad): Promise<number | 'tombstoned' | 'stored'> {
  const plans = p.groups.map(({ shape }) => pgLoadPlan(target, columns(shape)))
  await tx.execute(plans[0].lock)
  const exists = async (s: Statement) => (await tx.query<{ found: boolean }>(s.sql, s.params))[0].found
  const { anyTombstone, tombstoned } = plans[0]
  if ((await exists(anyTombstone)) && (await exists({ sql: tombstoned.sql, params: [...tombstoned.params, p.pkKeys] }))) return 'tombstoned'
  await tx.execute('SAVEPOINT cqrs_load_direct')
  try {
    let n = 0
    for (let i = 0; i < plans.length; i++) n += await tx.copyIn!(plans[i].direct, directCopy(p.groups[i]))
    return n
  } catch (e) {
    if ((e as { code?: unknown }).code !== UNIQUE_VIOLATION) throw e
    await tx.execute('ROLLBACK TO SAVEPOINT cqrs_load_direct')
    return 'stored'
  }
}

const UNIQUE_VIOLATION = '23505'

function run(tx: SqlRunner, s: Statement): Promise<number> {
  return tx.execute(s.sql, s.params)
}
