/**
 * bulk-load on PostgreSQL: dump rows straight to COPY text (no ApplyOp per row), COPY into a stage
 * table, one version-gated upsert ({@link pgLoadPlan}). The per-row work is what bounds a load, so
 * the common values (integers, strings, booleans, UTC datetimes as the wire writes them) are written
 * as they came; anything else goes through the replica's decoder, so a value is accepted or refused
 * here exactly as a consumed SYNC would be, with the same message.
 */
import { decodeValue } from '../core/codec.js'
import { LineError, parseDumpLine, type Line } from '../core/dump-format.js'
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
interface EncodedRow {
  pkKey: string
  revision: number
  /** Which columns the row gives ('1'/'0' per column): rows are copied in groups of one shape. */
  shape: string
  /** The given columns' COPY text, tab-separated. */
  text: string
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
   * One dump line: straight from its JSON text where every value is of a common form (no object per
   * row, numbers exact as written), else parsed and decoded ({@link encodeParsed}). Throws a
   * {@link LineError} saying what is wrong with the line.
   */
  encode(line: Line): EncodedRow {
    const s = line.text
    let r = this.layout?.encode(s)
    if (r) return r
    r = this.encodeFast(s)
    if (!r) return this.encodeParsed({ line: line.line, data: parseDumpLine(line) })
    if (this.learned < MAX_LAYOUTS) this.learn(s)
    return r
  }

  /**
   * Learn the layout of a line the fast path took ({@link RowLayout}): where it has one key for the
   * pk, no key twice, no escape and no space outside its strings (as a dump we wrote). A new layout
   * replaces the last; after {@link MAX_LAYOUTS} the fast path alone goes on (rows of many layouts).
   */
  private learn(s: string): void {
    this.learned++
    const keys: KeyInfo[] = []
    if (s.includes('\\') || s.charCodeAt(0) !== 123) return
    for (let i = 1; ; ) {
      if (s.charCodeAt(i) !== 34) return
      const ke = s.indexOf('"', i + 1)
      if (ke < 0 || s.charCodeAt(ke + 1) !== 58) return
      keys.push(this.keyInfo(s.slice(i + 1, ke)))
      const e = valueEnd(s, ke + 2)
      if (e < 0) return
      if (s.charCodeAt(e) === 125) {
        if (e + 1 !== s.length) return
        break
      }
      if (s.charCodeAt(e) !== 44) return
      i = e + 1
    }
    this.layout = RowLayout.of(this, keys)
  }

  /**
   * The fast path: walk the line's JSON text once, taking each value's text as it is where its column
   * reads it unchanged. Null for anything else (a form it does not take, a bad line, a missing or null
   * required value), so the parsed path decides, and words the error.
   */
  encodeFast(s: string): EncodedRow | null {
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
        const e = stringEnd(s, i)
        if (e < 0) return null
        text = s.slice(i + 1, e - 1)
        tok = Tok.Str
        if (text.includes('\\')) {
          tok = Tok.EscStr
          text = s.slice(i, e)
        }
        i = e
      } else if (c === 123 || c === 91) {
        const e = nestedEnd(s, i)
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
  encodeParsed(row: DumpRow): EncodedRow {
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
  /** The text before the value: the key, quoted, and its colon (after a comma but for the first). */
  prefix: string
  parse: Parse
  col: TargetColumn | undefined
  /** A JSON null as COPY text (the JSON null rule), or undefined where the column refuses a null. */
  nullText: string | undefined
}

/**
 * The hot path of a load: rows laid out as one row the fast path took (the same keys in the same
 * order, compact, no escapes: every line of a dump we wrote), read by comparing each key's text where
 * it is expected and checking each value's form by its column's kind, with no token classification,
 * no value array and no key lookups. The COPY columns follow the dump's key order (the shape lists
 * them). It takes a subset of what {@link PgRowEncoder.encodeFast} takes and gives the same value per
 * column (a unit test compares them); null for any other line, which the fast path then reads.
 */
class RowLayout {
  /** The row's COPY values in the layout's order; the last ones are the tail, the same for every row. */
  private readonly values: string[]

  private constructor(
    private readonly steps: Step[],
    private readonly shape: string,
    /** COPY values after the steps' values: the columns the row does not give (`\\N` time, revision 0). */
    tail: string[],
    private readonly pkString: boolean,
  ) {
    const given = steps.filter((st) => st.parse !== Parse.Skip).length
    this.values = [...new Array<string>(given).fill(''), ...tail]
  }

  static of(enc: PgRowEncoder, keys: KeyInfo[]): RowLayout | undefined {
    const f = enc.layoutFacts()
    const order: number[] = []
    const steps: Step[] = []
    let pk = 0
    let hasRevision = false
    for (const k of keys) {
      if (k.rank !== Infinity && k.col !== undefined) return undefined // a pk key that is also a column: the fast path
      const prefix = `${steps.length ? ',' : ''}${k.quoted}:`
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
        steps.push({ prefix, parse, col: k.col, nullText: nullText === '\\N' && k.col.required ? undefined : nullText })
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

  encode(s: string): EncodedRow | null {
    if (s.charCodeAt(0) !== 123 || s.indexOf('\\') >= 0) return null
    let i = 1
    // One flat string per row (join), not a rope of slices: ropes keep every line alive until COPY.
    const values = this.values
    let given = 0
    let pkKey = ''
    let revision = 0
    const steps = this.steps
    for (let n = 0; n < steps.length; n++) {
      const st = steps[n]
      if (!s.startsWith(st.prefix, i)) return null
      i += st.prefix.length
      let v: string
      let e: number
      const c = s.charCodeAt(i)
      if (c === 110 /* n */) {
        // null: the column's NULL (the JSON null rule); a null pk, revision or required value goes to the fast path
        if (!s.startsWith('null', i)) return null
        e = i + 4
        if (st.parse !== Parse.Skip && (st.nullText === undefined || st.parse === Parse.Pk || st.parse === Parse.Revision)) return null
        v = st.nullText ?? ''
      } else {
        switch (st.parse) {
          case Parse.Int:
          case Parse.BigInt:
          case Parse.Revision:
            e = intEnd(s, i, st.parse === Parse.BigInt ? Infinity : 15)
            if (e < 0) return null
            v = s.slice(i, e)
            if (st.parse === Parse.Revision) revision = Number(v)
            break
          case Parse.Pk:
            if (this.pkString) {
              if (c !== 34) return null
              e = s.indexOf('"', i + 1) + 1
              if (e === 0) return null
              // As the fast path: the text as it came (a raw control character makes COPY refuse the batch).
              v = pkKey = s.slice(i + 1, e - 1)
            } else {
              e = intEnd(s, i, st.col!.kind === 'Int' ? 15 : Infinity)
              if (e < 0) return null
              v = pkKey = s.slice(i, e)
            }
            break
          case Parse.Number:
            e = numberEnd(s, i)
            if (e < 0) return null
            v = s.slice(i, e)
            break
          case Parse.Boolean:
            if (s.startsWith('true', i)) (v = 't'), (e = i + 4)
            else if (s.startsWith('false', i)) (v = 'f'), (e = i + 5)
            else return null
            break
          case Parse.String:
            if (c !== 34) return null
            e = s.indexOf('"', i + 1) + 1
            if (e === 0) return null
            v = s.slice(i + 1, e - 1)
            break
          case Parse.DateTime:
            if (c !== 34) return null
            e = s.indexOf('"', i + 1) + 1
            if (e === 0 || !isUtcDateTime(s, i + 1, e - 1)) return null
            v = s.slice(i + 1, e - 1)
            break
          case Parse.Date:
            if (c !== 34 || s.charCodeAt(i + 11) !== 34 || !isPlainDate(s, i + 1)) return null
            e = i + 12
            v = s.slice(i + 1, i + 11)
            break
          case Parse.Json:
            if (c === 123 || c === 91) {
              e = nestedEnd(s, i)
              if (e < 0) return null
              v = copyEscape(s.slice(i, e))
            } else if (c === 34) {
              e = s.indexOf('"', i + 1) + 1
              if (e === 0) return null
              v = s.slice(i, e)
            } else if (c === 116 || c === 102) {
              v = s.startsWith('true', i) ? 'true' : s.startsWith('false', i) ? 'false' : ''
              if (!v) return null
              e = i + v.length
            } else {
              e = numberEnd(s, i)
              if (e < 0) return null
              v = s.slice(i, e)
            }
            break
          default:
            // A key the replica does not store: skipped, but a number must be one (as the fast path checks).
            e = valueEnd(s, i)
            if (e < 0) return null
            v = ''
        }
      }
      const d = s.charCodeAt(e)
      if (d !== 44 && d !== 125) return null
      if (st.parse !== Parse.Skip) values[given++] = v
      i = e
    }
    if (i + 1 !== s.length || s.charCodeAt(i) !== 125) return null
    return { pkKey, revision, shape: this.shape, text: values.join('\t') }
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
function intEnd(s: string, i: number, maxDigits: number): number {
  let j = s.charCodeAt(i) === 45 ? i + 1 : i
  const first = j
  if (s.charCodeAt(j) === 48) return isDigit(s.charCodeAt(j + 1)) || j !== i ? -1 : j + 1
  while (isDigit(s.charCodeAt(j))) j++
  return j === first || j - first > maxDigits ? -1 : j
}

/** The end of a JSON number at `i` (NUMBER_TEXT), or -1. */
function numberEnd(s: string, i: number): number {
  let j = s.charCodeAt(i) === 45 ? i + 1 : i
  if (s.charCodeAt(j) === 48) j++
  else if (isDigit(s.charCodeAt(j))) while (isDigit(s.charCodeAt(j))) j++
  else return -1
  if (s.charCodeAt(j) === 46) {
    const f = ++j
    while (isDigit(s.charCodeAt(j))) j++
    if (j === f) return -1
  }
  const x = s.charCodeAt(j)
  if (x === 101 || x === 69) {
    j++
    const y = s.charCodeAt(j)
    if (y === 43 || y === 45) j++
    const f = j
    while (isDigit(s.charCodeAt(j))) j++
    if (j === f) return -1
  }
  return j
}

/** The end of any JSON value at `i` without escapes (a string, nested value or bare token), or -1. */
function valueEnd(s: string, i: number): number {
  const c = s.charCodeAt(i)
  if (c === 34) {
    const q = s.indexOf('"', i + 1)
    return q < 0 ? -1 : q + 1
  }
  if (c === 123 || c === 91) return nestedEnd(s, i)
  let j = i
  for (let d = c; j < s.length && d !== 44 && d !== 125 && d !== 93; d = s.charCodeAt(++j)) if (d === 32 || d === 9 || d === 10 || d === 13 || d === 34) return -1
  if (j === i) return -1
  const t = s.slice(i, j)
  return t === 'true' || t === 'false' || t === 'null' || numberEnd(s, i) === j ? j : -1
}

/** `YYYY-MM-DD` at `i` (PLAIN_DATE). */
function isPlainDate(s: string, i: number): boolean {
  return isDigit(s.charCodeAt(i)) && isDigit(s.charCodeAt(i + 1)) && isDigit(s.charCodeAt(i + 2)) && isDigit(s.charCodeAt(i + 3)) && s.charCodeAt(i + 4) === 45 && isDigit(s.charCodeAt(i + 5)) && isDigit(s.charCodeAt(i + 6)) && s.charCodeAt(i + 7) === 45 && isDigit(s.charCodeAt(i + 8)) && isDigit(s.charCodeAt(i + 9))
}

/** s[i, end) is a UTC datetime as UTC_DATETIME takes it: `YYYY-MM-DD HH:MM:SS[.ffffff](+00:00|Z)`, T or space. */
function isUtcDateTime(s: string, i: number, end: number): boolean {
  if (!isPlainDate(s, i)) return false
  const t = s.charCodeAt(i + 10)
  if (t !== 32 && t !== 84) return false
  if (!isDigit(s.charCodeAt(i + 11)) || !isDigit(s.charCodeAt(i + 12)) || s.charCodeAt(i + 13) !== 58) return false
  if (!isDigit(s.charCodeAt(i + 14)) || !isDigit(s.charCodeAt(i + 15)) || s.charCodeAt(i + 16) !== 58) return false
  if (!isDigit(s.charCodeAt(i + 17)) || !isDigit(s.charCodeAt(i + 18))) return false
  let j = i + 19
  if (s.charCodeAt(j) === 46) {
    const f = ++j
    while (j < end && isDigit(s.charCodeAt(j))) j++
    if (j === f || j - f > 6) return false
  }
  return (end - j === 1 && s.charCodeAt(j) === 90) || (end - j === 6 && s.startsWith('+00:00', j))
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
function stringEnd(s: string, i: number): number {
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
function nestedEnd(s: string, i: number): number {
  let depth = 0
  for (let j = i; j < s.length; j++) {
    const c = s.charCodeAt(j)
    if (c === 34) {
      j = stringEnd(s, j) - 1
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

/** A batch encoded for COPY: per shape, its rows (one per pk); the lines that could not be read. */
export interface PreparedLoad {
  groups: Array<{ shape: string; rows: EncodedRow[] }>
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
  const rows: EncodedRow[] = []
  // A dump in pk order (ours always is) has no pk twice: rows whose pks only rise need no map.
  let rising = true
  let byPk: Map<string, EncodedRow> | undefined
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]
    if (n > 0 && n % ENCODE_SLICE === 0) yield
    let r: EncodedRow
    try {
      r = encoder.encode(line)
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
  return { groups: [...shapes].map(([shape, rows]) => ({ shape, rows })), pkKeys: kept.map((r) => r.pkKey), encoded: lines.length - errors.length, errors }
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
    for (const { shape, rows } of p.groups) {
      const plan = pgLoadPlan(target, columns(shape))
      await tx.execute(plan.create)
      await tx.copyIn(plan.copy, copyInput(rows, true))
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
    for (let i = 0; i < plans.length; i++) n += await tx.copyIn!(plans[i].direct, copyInput(p.groups[i].rows, false))
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

/** The COPY input of some rows: each row's given values, then (for the stage) its pk key. */
function copyInput(rows: EncodedRow[], withKey: boolean): string {
  let out = ''
  if (withKey) for (const r of rows) out += `${r.text}\t${copyEscape(r.pkKey)}\n`
  else for (const r of rows) out += `${r.text}\n`
  return out
}
