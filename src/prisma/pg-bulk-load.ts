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
    return this.cols.filter((_, i) => shape.charCodeAt(i) === 49)
  }

  /**
   * One dump line: straight from its JSON text where every value is of a common form (no object per
   * row, numbers exact as written), else parsed and decoded ({@link encodeParsed}). Throws a
   * {@link LineError} saying what is wrong with the line.
   */
  encode(line: Line): EncodedRow {
    return this.encodeFast(line.text) ?? this.encodeParsed({ line: line.line, data: parseDumpLine(line) })
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
  const errors: PreparedLoad['errors'] = []
  const rows: EncodedRow[] = []
  // A dump in pk order (ours always is) has no pk twice: rows whose pks only rise need no map.
  let rising = true
  let byPk: Map<string, EncodedRow> | undefined
  for (const line of lines) {
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
      if (direct !== null) return direct
      state.tryDirect = false
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
 * the table. Null (and the transaction as it was before, the lock kept) where a tombstone exists or a
 * row is already stored (the pk index refuses it): the batch then goes staged.
 */
async function copyDirect(tx: SqlRunner, target: TableTarget, columns: (shape: string) => TargetColumn[], p: PreparedLoad): Promise<number | null> {
  const plans = p.groups.map(({ shape }) => pgLoadPlan(target, columns(shape)))
  await tx.execute(plans[0].lock)
  const [{ found }] = await tx.query<{ found: boolean }>(plans[0].tombstoned.sql, [...plans[0].tombstoned.params, p.pkKeys])
  if (found) return null
  await tx.execute('SAVEPOINT cqrs_load_direct')
  try {
    let n = 0
    for (let i = 0; i < plans.length; i++) n += await tx.copyIn!(plans[i].direct, copyInput(p.groups[i].rows, false))
    return n
  } catch (e) {
    if ((e as { code?: unknown }).code !== UNIQUE_VIOLATION) throw e
    await tx.execute('ROLLBACK TO SAVEPOINT cqrs_load_direct')
    return null
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
