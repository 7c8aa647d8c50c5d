import type { Row } from '../config/master-options.js'
import type { ScalarKind } from '../core/codec.js'
import { ConfigError } from '../core/errors.js'
import { ExactDateTime } from '../core/datetime.js'
import { JsonCompactor } from '../core/dump-format.js'
import { parseJson } from '../core/json.js'
import { setExact } from '../master/exact-values.js'
import type { ModelPlan } from '../master/model-plan.js'
import type { PageOptions, RenderedDumpSource, RowSource } from '../master/row-source.js'
import type { StoredKey, TableReader } from '../replica/table-reader.js'
import { providerOf, type FieldMeta, type ModelMeta, type Provider } from './internals.js'
import { quoteIdent } from './sql.js'
import { sqlRunner, type SqlRunner } from './sql-runner.js'

/**
 * COPY of the rendered lines, raw: CSV with a quote and a delimiter that JSON text never holds (JSON
 * escapes every control character), so each line comes out as it is, one per row.
 */
export function pgCopyLines(renderSql: string): string {
  return `COPY (SELECT line FROM (${renderSql}) d ORDER BY k) TO STDOUT WITH (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')`
}

/**
 * The planner reads a whole table in pk order by its index, on one core: it does not weigh what
 * rendering a line costs. A parallel scan with a sort renders on several (here 7.3 s against 12.5 s
 * for 1M author rows, with 2 workers), and the sort keeps the pk order.
 */
const PG_DUMP_SETTINGS = { enable_indexscan: 'off', enable_bitmapscan: 'off' }

function countNewlines(b: Buffer): number {
  let n = 0
  for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) n++
  return n
}

/** pk kinds {@link RowScanner.keyRows} reads by raw SQL (their values convert back exactly). */
const SQL_KEY_KINDS = new Set<ScalarKind>(['Int', 'BigInt', 'String'])

/**
 * Reads one model's table in pk order with keyset pagination (`pk > last ORDER BY pk LIMIT n`, never
 * OFFSET), any pk type, in constant memory; the next page is fetched while the caller works on the
 * current one. Serves both sides: a master model ({@link RowSource}) and a replica table ({@link TableReader}).
 *
 * Rows come from Prisma's `findMany` (so a `where` is validated by Prisma against the model, and rows
 * have Prisma's types) except one hot path: whole pages without a `where` on PostgreSQL are read with
 * one raw statement whose columns are cast so the values convert to the same types cheaply (see
 * {@link pgFastSelect}); integration tests pin that both paths give identical rows.
 */
export class RowScanner implements RowSource, RenderedDumpSource, TableReader {
  readonly provider: Provider
  private readonly delegate: any
  private readonly pk: FieldMeta
  private readonly fast: FastSelect | null
  private readonly sql: SqlRunner

  constructor(
    private readonly client: any,
    readonly meta: ModelMeta,
    private readonly fields: { pkField: string; revisionField: string },
  ) {
    this.provider = providerOf(client)
    this.delegate = client[meta.prop]
    if (!this.delegate?.findMany) throw new ConfigError(`The Prisma client has no model delegate '${meta.prop}' for ${meta.name}`)
    const pk = meta.fields.find((f) => f.name === fields.pkField)
    if (!pk) throw new ConfigError(`${meta.name} has no field '${fields.pkField}' to page by`)
    this.pk = pk
    this.fast = this.provider === 'postgresql' ? pgFastSelect(meta, pk) : null
    this.sql = sqlRunner(client, this.provider)
  }

  /** Release the scanner's own connection (the fast path reads through the driver adapter). */
  close(): Promise<void> {
    return this.sql.close()
  }

  async *pages(o: PageOptions): AsyncIterable<Row[]> {
    const all = !o.where || Object.keys(o.where).length === 0
    const fetch = (after: unknown): Promise<Row[]> => (this.fast && all && !o.keysOnly ? this.fastPage(after, o.batchSize) : this.findPage(after, o))
    let next: Promise<Row[]> | null = fetch(undefined)
    while (next) {
      const rows: Row[] = await next
      // Ask for the next page before handing this one over: the database works while the caller encodes.
      next = rows.length === o.batchSize ? fetch(rows[rows.length - 1][this.pk.name]) : null
      next?.catch(() => {}) // surfaced when awaited; not an unhandled rejection if the caller stops early
      if (rows.length) yield rows
    }
  }

  /**
   * PostgreSQL renders each dump line itself (see {@link pgDumpLineSql}) and sends the whole dump as
   * one `COPY ... TO STDOUT` in pk order (one statement: one snapshot, no page round trips); where COPY
   * is not to be had (no pg driver adapter), the same lines come in keyset pages. Other dialects: null.
   */
  dumpLineChunks(plan: ModelPlan, batchSize: number): AsyncIterable<{ text: string | Buffer; rows: number }> | null {
    if (this.provider !== 'postgresql') return null
    const sql = pgDumpLineSql(this.meta, plan)
    if (!sql) return null
    const self = this
    // Only a json/jsonb value puts whitespace in a rendered line.
    const compact = plan.wire.some((w) => w.kind === 'Json') ? new JsonCompactor() : null
    return (async function* () {
      let started = false
      try {
        for await (const chunk of self.sql.copyOut!(pgCopyLines(sql), PG_DUMP_SETTINGS)) {
          started = true
          yield { text: compact ? compact.push(chunk) : chunk, rows: countNewlines(chunk) }
        }
        return
      } catch (e) {
        if (started) throw e
      }
      for await (const lines of self.dumpLinePages(sql, batchSize)) yield { text: `${lines.join('\n')}\n`, rows: lines.length }
    })()
  }

  /** The rendered lines in keyset pages (see {@link dumpLineChunks}), compact. */
  async *dumpLinePages(sql: string, batchSize: number): AsyncIterable<string[]> {
    const compact = new JsonCompactor()
    let after: unknown
    for (;;) {
      const rows =
        after === undefined
          ? await this.sql.query<{ k: unknown; line: string }>(`${sql} ORDER BY 1 LIMIT ${batchSize}`)
          : await this.sql.query<{ k: unknown; line: string }>(`${sql} WHERE t.${quoteIdent('postgresql', this.pk.column)} > $1 ORDER BY 1 LIMIT ${batchSize}`, [after])
      if (rows.length) yield rows.map((r) => compact.push(Buffer.from(r.line)).toString())
      if (rows.length < batchSize) return
      after = rows[rows.length - 1].k
    }
  }

  async byPks(pks: unknown[], o: { keysOnly?: boolean } = {}): Promise<Row[]> {
    if (!pks.length) return []
    if (o.keysOnly && SQL_KEY_KINDS.has(this.pk.kind)) return this.keyRows(pks)
    if (o.keysOnly) return this.delegate.findMany({ where: { [this.pk.name]: { in: pks } }, select: this.keySelect() })
    return this.withExactValues(await this.delegate.findMany({ where: { [this.pk.name]: { in: pks } } }))
  }

  /**
   * pk and revision of some pks, in one raw statement. Not through Prisma: its query-plan cache keeps a
   * plan per `in` list it saw, which held well over 50 MB after some hundred diff batches of 5,000 pks.
   */
  private async keyRows(pks: unknown[]): Promise<Row[]> {
    const q = (n: string) => quoteIdent(this.provider, n)
    const pk = q(this.pk.column)
    const rev = q(this.meta.fields.find((f) => f.name === this.fields.revisionField)?.column ?? this.fields.revisionField)
    const head = `SELECT ${pk} AS k, ${rev} AS r FROM ${q(this.meta.table)} WHERE ${pk}`
    const rows =
      this.provider === 'postgresql'
        ? await this.sql.query<{ k: unknown; r: unknown }>(`${head} = ANY($1)`, [pks.map(String)])
        : await this.sql.query<{ k: unknown; r: unknown }>(`${head} IN (${pks.map(() => '?').join(', ')})`, pks.map((p) => (typeof p === 'bigint' ? p.toString() : p)))
    const toPk = this.pk.kind === 'Int' ? Number : this.pk.kind === 'BigInt' ? (v: unknown) => BigInt(v as string) : String
    return rows.map((r) => ({ [this.pk.name]: toPk(r.k), [this.fields.revisionField]: Number(r.r) }))
  }

  /**
   * The revision and each column's text as the database writes it, for these pks (decoded): what the
   * replica hashes for `diff-master --hash`. Bytes come as base64; datetimes as the database's text
   * (any zone, every fractional digit); SQLite's epoch-millisecond datetimes as ISO text.
   */
  async rowTexts(pks: unknown[], columns: Array<{ column: string; kind: ScalarKind }>): Promise<Map<string, { revision: number; texts: Array<string | null> }>> {
    if (!pks.length) return new Map()
    const q = (n: string) => quoteIdent(this.provider, n)
    const pk = q(this.pk.column)
    const rev = q(this.meta.fields.find((f) => f.name === this.fields.revisionField)?.column ?? this.fields.revisionField)
    const text = (c: { column: string; kind: ScalarKind }) => {
      const col = q(c.column)
      if (this.provider === 'postgresql') return c.kind === 'Bytes' ? `replace(encode(${col}, 'base64'), E'\\n', '')` : `${col}::text`
      // TO_BASE64 breaks lines every 76 characters.
      if (this.provider === 'mysql') return c.kind === 'Bytes' ? `REPLACE(TO_BASE64(${col}), CHAR(10), '')` : `CAST(${col} AS CHAR)`
      return c.kind === 'Bytes' ? `hex(${col})` : `CAST(${col} AS TEXT)`
    }
    const head = `SELECT ${pk} AS k, ${rev} AS r${columns.map((c, i) => `, ${text(c)} AS ${q(`c${i}`)}`).join('')} FROM ${q(this.meta.table)} WHERE ${pk}`
    const rows =
      this.provider === 'postgresql'
        ? await this.sql.query<Record<string, unknown>>(`${head} = ANY($1)`, [pks.map(String)])
        : await this.sql.query<Record<string, unknown>>(`${head} IN (${pks.map(() => '?').join(', ')})`, pks.map((p) => (typeof p === 'bigint' ? p.toString() : p)))
    const out = new Map<string, { revision: number; texts: Array<string | null> }>()
    for (const r of rows) {
      const texts = columns.map((c, i) => {
        const v = r[`c${i}`]
        if (v === null || v === undefined) return null
        if (this.provider === 'sqlite' && c.kind === 'Bytes') return Buffer.from(String(v), 'hex').toString('base64')
        if (this.provider === 'sqlite' && c.kind === 'DateTime' && /^\d+$/.test(String(v))) return new Date(Number(v)).toISOString()
        return String(v)
      })
      out.set(String(r.k), { revision: Number(r.r), texts })
    }
    return out
  }

  async count(where?: Record<string, unknown>): Promise<number> {
    return Number(await this.delegate.count(where ? { where } : undefined))
  }

  async *keyPages(batchSize: number): AsyncIterable<StoredKey[]> {
    for await (const rows of this.pages({ batchSize, keysOnly: true })) yield rows.map((r) => ({ pk: r[this.pk.name], revision: Number(r[this.fields.revisionField]) }))
  }

  async revisions(pks: unknown[]): Promise<Map<string, number>> {
    const rows = await this.byPks(pks, { keysOnly: true })
    return new Map(rows.map((r) => [String(r[this.pk.name]), Number(r[this.fields.revisionField])]))
  }

  async clear(): Promise<number> {
    return Number((await this.delegate.deleteMany({})).count)
  }

  private keySelect() {
    return { [this.pk.name]: true, [this.fields.revisionField]: true }
  }

  private async findPage(after: unknown, o: PageOptions): Promise<Row[]> {
    const gt = after === undefined ? undefined : { [this.pk.name]: { gt: after } }
    const where = o.where && gt ? { AND: [o.where, gt] } : (o.where ?? gt)
    const rows: Row[] = await this.delegate.findMany({ where, orderBy: { [this.pk.name]: 'asc' }, take: o.batchSize, select: o.keysOnly ? this.keySelect() : undefined })
    return o.keysOnly ? rows : this.withExactValues(rows)
  }

  /**
   * Prisma gives datetimes in milliseconds and JSON through JSON.parse (`33.0` becomes `33`): one raw
   * statement per page reads those columns' text and keeps it beside each row as its exact values
   * (exact-values.ts), which the events are built from. SQLite stores what JavaScript wrote: nothing to add.
   */
  private async withExactValues(rows: Row[]): Promise<Row[]> {
    const fields = this.meta.fields.filter((f) => !f.isList && (f.kind === 'DateTime' || f.kind === 'Json'))
    if (!rows.length || !fields.length || this.provider === 'sqlite' || !SQL_KEY_KINDS.has(this.pk.kind)) return rows
    const q = (n: string) => quoteIdent(this.provider, n)
    const pk = q(this.pk.column)
    const text = (c: string) => (this.provider === 'postgresql' ? `${c}::text` : `CAST(${c} AS CHAR)`)
    const rev = q(this.meta.fields.find((f) => f.name === this.fields.revisionField)?.column ?? this.fields.revisionField)
    const head = `SELECT ${pk} AS k, ${rev} AS r, ${fields.map((f, i) => `${text(q(f.column))} AS ${q(`c${i}`)}`).join(', ')} FROM ${q(this.meta.table)} WHERE ${pk}`
    const pks = rows.map((r) => r[this.pk.name])
    const texts =
      this.provider === 'postgresql'
        ? await this.sql.query<Record<string, unknown>>(`${head} = ANY($1)`, [pks.map(String)])
        : await this.sql.query<Record<string, unknown>>(`${head} IN (${pks.map(() => '?').join(', ')})`, pks.map((p) => (typeof p === 'bigint' ? p.toString() : p)))
    const byPk = new Map(texts.map((t) => [String(t.k), t]))
    for (const row of rows) {
      const t = byPk.get(String(row[this.pk.name]))
      // Deleted or changed since the page was read (two statements, two snapshots): the Prisma values stand.
      if (!t || Number(t.r) !== Number(row[this.fields.revisionField])) continue
      fields.forEach((f, i) => {
        const v = t[`c${i}`]
        if (v === null || v === undefined) return
        const exact = f.kind === 'Json' ? parseJson(String(v)) : ExactDateTime.parse(String(v))
        if (exact !== null) setExact(row, f.name, exact)
      })
    }
    return rows
  }

  private async fastPage(after: unknown, limit: number): Promise<Row[]> {
    const f = this.fast!
    const raw: Array<Record<string, unknown>> =
      after === undefined ? await this.sql.query(`${f.sql} ORDER BY ${f.order} LIMIT ${limit}`) : await this.sql.query(`${f.sql} WHERE ${f.order} > $1 ORDER BY ${f.order} LIMIT ${limit}`, [after])
    for (const r of raw) for (const [name, conv] of f.convert) r[name] = conv(r[name], r)
    return raw as Row[]
  }
}

interface FastSelect {
  sql: string
  order: string
  /** Fields whose raw value needs converting to Prisma's type (`row` takes the exact value beside it). */
  convert: Array<[string, (v: unknown, row: Row) => unknown]>
}

/** `numeric::text` of PostgreSQL to the text decimal.js's `toFixed()` gives for the same value (no trailing zeros). */
function decimalText(s: string): string {
  if (s.indexOf('.') === -1) return s
  let end = s.length
  while (s.charCodeAt(end - 1) === 48) end--
  if (s.charCodeAt(end - 1) === 46) end--
  const out = s.slice(0, end)
  return out === '-0' ? '0' : out
}

/** A Decimal as the codec reads it (`toFixed()`), without building a decimal.js object per value. */
class DecimalText {
  constructor(readonly text: string) {}
  toFixed(): string {
    return this.text
  }
  toString(): string {
    return this.text
  }
}

/**
 * One raw SELECT for whole rows on PostgreSQL. Casts pick the cheapest exact form per kind: decimals,
 * big integers, JSON and enums as text (no precision lost, JSON read by our lossless parser), datetimes
 * as text (a Date for the row, the microseconds kept as its exact value).
 */
export function pgFastSelect(meta: ModelMeta, pk: FieldMeta): FastSelect {
  const q = (n: string) => quoteIdent('postgresql', n)
  const convert: FastSelect['convert'] = []
  const exprs = meta.fields.map((f) => {
    const c = q(f.column)
    const as = ` AS ${q(f.name)}`
    const conv = (fn: (v: any, row: Row) => unknown) => convert.push([f.name, (v, row) => (v === null || v === undefined ? null : fn(v, row))])
    if (f.isList) return `${c}${as}`
    switch (f.kind as ScalarKind) {
      case 'DateTime':
        // The column's text (every fractional digit, in any session time zone), a Date for the row.
        conv((v: string, row) => {
          const exact = ExactDateTime.parse(v)
          if (!exact) return new Date(v)
          setExact(row, f.name, exact)
          return exact.toDate()
        })
        return `${c}::text${as}`
      case 'Date':
        conv((v: string) => new Date(`${v}T00:00:00Z`))
        return `to_char(${c}, 'YYYY-MM-DD')${as}`
      case 'Decimal':
        conv((v: string) => new DecimalText(decimalText(v)))
        return `${c}::text${as}`
      case 'BigInt':
        conv((v) => (typeof v === 'bigint' ? v : BigInt(v as string)))
        return `${c}::text${as}`
      case 'Json':
        conv((v: string, row) => {
          const exact = parseJson(v)
          setExact(row, f.name, exact)
          return exact
        })
        return `${c}::text${as}`
      case 'String':
      case 'Enum':
        return `${c}::text${as}`
      case 'Bytes':
        conv((v: string) => Buffer.from(v, 'base64'))
        return `encode(${c}, 'base64')${as}`
      default:
        return `${c}${as}`
    }
  })
  return { sql: `SELECT ${exprs.join(', ')} FROM ${q(meta.table)}`, order: q(pk.column), convert }
}

/**
 * The SELECT that renders a dump line per row on PostgreSQL with the encodings of the JS path:
 * django-cqrs datetimes with their microseconds, `YYYY-MM-DD` dates, decimals as the column holds them
 * (its scale), big integers as exact numbers, bytes as base64. row_to_json writes compact JSON in column
 * order, like the JS path, except inside a json/jsonb value (`{"a": 1}`), which {@link JsonCompactor}
 * takes out. Null when a key is longer than PostgreSQL's 63-byte names, or for a float column (PostgreSQL
 * writes `1e-07` where JavaScript writes `1e-7`).
 */
export function pgDumpLineSql(meta: ModelMeta, plan: ModelPlan): string | null {
  if (plan.wire.some((w) => Buffer.byteLength(w.key) > 63 || w.kind === 'Float')) return null
  const q = (n: string) => quoteIdent('postgresql', n)
  const col = (field: string) => `t.${q(meta.fields.find((f) => f.name === field)!.column)}`
  // ExactDateTime#toWire in SQL: UTC, six fractional digits, the fraction left out when zero. One
  // to_char per value (a second one and an extract() for the zero fraction cost a tenth of the dump);
  // '.000000' can only be the fraction, the one '.' of the text.
  const datetime = (c: string, f: FieldMeta) => {
    const utc = /^Timestamptz/i.test(f.nativeType ?? '') ? `(${c} AT TIME ZONE 'UTC')` : c
    return `replace(to_char(${utc}, 'YYYY-MM-DD HH24:MI:SS.US'), '.000000', '') || '+00:00'`
  }
  const fieldMeta = (field: string) => meta.fields.find((f) => f.name === field)!
  const value = (field: string, kind: ScalarKind) => {
    const c = col(field)
    switch (kind) {
      case 'DateTime':
        return datetime(c, fieldMeta(field))
      case 'Date':
        return `to_char(${c}, 'YYYY-MM-DD')`
      case 'Decimal':
        // The column's own digits when its scale is declared (the JS path pads to it), else trimmed as decimal.js reads it.
        return fieldMeta(field).scale === undefined ? `trim_scale(${c})` : c
      case 'Bytes':
        return `replace(encode(${c}, 'base64'), E'\\n', '')`
      default:
        return c
    }
  }
  const fields = [
    `${col(plan.revisionField)} AS "cqrs_revision"`,
    `${datetime(col(plan.updatedField), fieldMeta(plan.updatedField))} AS "cqrs_updated"`,
    ...plan.wire.map((w) => `${value(w.field, w.kind)} AS ${q(w.key)}`),
  ]
  return `SELECT ${col(plan.pkField)} AS k, row_to_json(x)::text AS line FROM ${q(meta.table)} t, LATERAL (SELECT ${fields.join(', ')}) x`
}
