import * as crypto from 'node:crypto'
import { NonRetryableError } from '../core/errors.js'
import type { ApplyOp, ApplyResult, TableTarget } from '../replica/apply-op.js'
import { RAISE_MAX_PACKET } from '../replica/classify-db-error.js'
import type { Line } from '../core/dump-format.js'
import type { LoadCount, ReplicaStore, Tombstone } from '../replica/replica-store.js'
import { gateOf, type Gate } from '../replica/version-gate.js'
import { applyPreparedLoad, PgRowEncoder, prepareLoadAsync, type DirectLoadState } from './pg-bulk-load.js'
import type { Provider } from './internals.js'
import { columnsOf, deleteStatement, PG_LAYOUT_SQL, pgApplyStatement, pgLayout, pgPreparedScript, sameLayout, type PgLayout, TOMBSTONES, tombstoneSelect, tombstoneStatement, upsertStatement, type Statement } from './replica-sql.js'
import { quoteIdent } from './sql.js'
import { preparedStatementTrouble, PrismaRunner, runSessionScript, sqlRunner, type SqlRunner } from './sql-runner.js'

/**
 * The replica store on PostgreSQL, MySQL/MariaDB and SQLite. A batch is one transaction: lock the
 * pks (PostgreSQL advisory locks; MySQL locking reads of the tombstones, gaps included; SQLite's single
 * writer), read tombstones (PostgreSQL checks them inside its upsert instead), then one upsert per
 * signal kind, one delete and one tombstone insert.
 * Batches run on the store's own adapter connection (fast); row hooks run in a Prisma transaction,
 * so they can write through the Prisma client.
 */
export class PrismaReplicaStore implements ReplicaStore {
  private readonly fast: SqlRunner
  private readonly prisma: PrismaRunner
  private readonly loads = new WeakMap<TableTarget, { encoder: PgRowEncoder; direct: DirectLoadState }>()

  constructor(
    client: any,
    readonly provider: Provider,
  ) {
    this.fast = sqlRunner(client, provider)
    this.prisma = new PrismaRunner(client)
    // Only PostgreSQL has the bulk path: without it, bulk-load goes through applyBatch one batch at a time.
    if (provider === 'postgresql') this.loadRows = (target, lines) => this.pgLoadRows(target, lines)
  }

  /** PostgreSQL: its batches lock pks with advisory locks only ({@link pgLockStatement}), so two at once cannot deadlock. */
  get concurrentBatches(): boolean {
    return this.provider === 'postgresql'
  }

  /** bulk-load's path, on PostgreSQL only (see {@link pgLoadRows}). */
  readonly loadRows?: (target: TableTarget, lines: Line[]) => Promise<LoadCount | null>

  /**
   * Dump lines encoded for COPY ({@link prepareLoadAsync}), then COPY straight into the table where no pk
   * of the batch is stored or tombstoned, else into a stage table and one gated upsert
   * ({@link applyPreparedLoad}); no per-pk locks. Once a batch met stored rows, this store loads the
   * target staged.
   */
  private pgLoadRows(target: TableTarget, lines: Line[]): Promise<LoadCount | null> {
    let load = this.loads.get(target)
    if (!load) this.loads.set(target, (load = { encoder: new PgRowEncoder(target), direct: { tryDirect: true } }))
    const { encoder, direct } = load
    return prepareLoadAsync(encoder, lines).then((p) => applyPreparedLoad(this.fast, target, (shape) => encoder.columns(shape), p, direct))
  }

  async applyBatch(target: TableTarget, ops: ApplyOp[]): Promise<ApplyResult[]> {
    if (this.provider === 'postgresql') return this.pgApplyBatch(target, ops)
    const packet = this.provider === 'mysql' ? await this.maxPacket() : Infinity
    return this.locked(this.fast, target.cqrsId, ops.map((o) => o.pkKey), async (tx, tombs) => {
      const results: ApplyResult[] = ops.map(() => 'skipped')
      const groups: Record<Gate, number[]> = { newer: [], notOlder: [], always: [] }
      const deletes: number[] = []
      ops.forEach((op, i) => {
        if (op.signal === 'DELETE') return void deletes.push(i)
        const gate = gateOf(op, tombs.get(op.pkKey))
        if (gate) groups[gate].push(i)
      })
      for (const [gate, idx] of Object.entries(groups) as Array<[Gate, number[]]>) {
        if (!idx.length) continue
        // Rows may carry different key sets (a partial serializer): one statement per key set.
        for (const group of byColumns(idx.map((i) => ops[i]))) {
          for (const part of withinParams(this.provider, group, columnsOf(target, group).length)) {
            for (const [sub, st] of withinPacket(part, (o) => upsertStatement(this.provider, target, o, gate), packet)) {
              const n = await run(tx, st)
              if (n > 0) for (const op of sub) results[ops.indexOf(op)] = 'applied'
            }
          }
        }
      }
      if (deletes.length) {
        const dops = deletes.map((i) => ops[i])
        for (const part of withinParams(this.provider, dops, 2)) await run(tx, deleteStatement(this.provider, target, part))
        for (const part of withinParams(this.provider, dops, 4)) await run(tx, tombstoneStatement(this.provider, target.cqrsId, part))
        for (const i of deletes) results[i] = 'applied'
      }
      return results
    })
  }

  /**
   * PostgreSQL: lock the pks, then one statement per gate and key set that checks tombstones and the
   * gate itself ({@link pgApplyStatement}) and names the pks it did not change; no tombstone read first. The
   * whole transaction goes as one script ({@link pgPreparedScript}): one round trip instead of one per
   * statement plus BEGIN and COMMIT.
   */
  private async pgApplyBatch(target: TableTarget, ops: ApplyOp[]): Promise<ApplyResult[]> {
    const layout = await this.layout(target)
    try {
      return await this.pgApplyScript(target, ops, layout)
    } catch (e) {
      // A migration may have changed the table's columns since they were read (the statement checks
      // them): read them again, and if they changed, the batch goes once more with the new ones.
      if (!layout) throw e
      const now = await this.layout(target, true)
      if (!now || sameLayout(now, layout)) throw e
      return this.pgApplyScript(target, ops, now)
    }
  }

  private readonly layouts = new Map<string, Promise<PgLayout | undefined>>()

  /**
   * PostgreSQL: the table's columns, for {@link pgApplyStatement}; read once, or again when `fresh`.
   * Undefined (this batch goes as untyped JSON, the next reads again) while they cannot be read.
   */
  private layout(target: TableTarget, fresh = false): Promise<PgLayout | undefined> {
    let layout = fresh ? undefined : this.layouts.get(target.table)
    if (!layout) {
      layout = this.fast.query<{ n: string; t: string; domain: unknown }>(PG_LAYOUT_SQL, [quoteIdent('postgresql', target.table)]).then(pgLayout, () => void this.layouts.delete(target.table))
      this.layouts.set(target.table, layout)
    }
    return layout
  }

  private async pgApplyScript(target: TableTarget, ops: ApplyOp[], layout: PgLayout | undefined): Promise<ApplyResult[]> {
    const groups: Record<Gate, ApplyOp[]> = { newer: [], notOlder: [], always: [] }
    const deletes: ApplyOp[] = []
    for (const op of ops) {
      if (op.signal === 'DELETE') deletes.push(op)
      // No tombstone given: the statement applies the tombstone rule itself.
      else groups[gateOf(op, undefined)!].push(op)
    }
    // Built before the transaction, so the locks are held for the statements alone.
    const upserts: Statement[] = []
    for (const [gate, group] of Object.entries(groups) as Array<[Gate, ApplyOp[]]>) {
      if (group.length) for (const part of byColumns(group)) upserts.push(pgApplyStatement(target, part, gate, layout))
    }
    const removals = deletes.length ? [deleteStatement(this.provider, target, deletes, layout), tombstoneStatement(this.provider, target.cqrsId, deletes)] : []
    // The lock statement first and on its own: the upserts' tombstone checks read after it (see pgApplyStatement).
    const statements = [pgLockStatement(target.cqrsId, ops.map((o) => o.pkKey)), ...upserts, ...removals]
    // Rows of each statement (a script's results before them, its BEGIN's and PREPAREs', left out).
    const results = (await this.pgRunScript(statements, 1 + upserts.length)) ?? (await this.fast.transaction(async (tx) => {
      const rows: Array<Record<string, unknown>[]> = []
      for (const st of statements) rows.push(await tx.query(st.sql, st.params))
      return rows
    }))
    // The upserts name the ops they did not apply (pgApplyStatement).
    const skipped = new Set<string>()
    for (const rows of results.slice(1, 1 + upserts.length)) for (const r of rows) skipped.add(r.cqrs_pk_key as string)
    return ops.map((op) => (op.signal !== 'DELETE' && skipped.has(op.pkKey) ? 'skipped' : 'applied'))
  }

  /**
   * PostgreSQL: the lock statement and the upserts (texts that repeat from batch to batch) are
   * PREPAREd once per connection ({@link pgPreparedScript}), until a connection shows it does not keep
   * them (PgBouncer in transaction mode, a `DISCARD ALL`): from then on this store inlines them all,
   * and the batch that found out runs again so.
   */
  private prepare = true

  /** `statements` as one script, the first `prepared` of them PREPAREd; each statement's rows, or null without a session. */
  private async pgRunScript(statements: Statement[], prepared: number): Promise<Array<Record<string, unknown>[]> | null> {
    const run = (count: number) => runSessionScript(this.fast, (done) => pgPreparedScript(statements, count, done))
    if (!this.prepare) return run(0)
    try {
      return await run(prepared)
    } catch (e) {
      if (!preparedStatementTrouble(e)) throw e
      this.prepare = false
      return run(0)
    }
  }

  private packet: Promise<number> | null = null

  /**
   * MySQL/MariaDB: the server's `max_allowed_packet`, read once: the largest statement it takes. A
   * bigger one is refused (errno 1153) or the connection is cut while it is sent.
   */
  private maxPacket(): Promise<number> {
    this.packet ??= this.fast.query<{ m: number | bigint | string }>('SELECT @@max_allowed_packet AS m').then(
      (rows) => Number(rows[0]?.m) || DEFAULT_MAX_PACKET,
      () => ((this.packet = null), DEFAULT_MAX_PACKET), // read again next time
    )
    return this.packet
  }

  /** Hooks get a Prisma transaction client as `tx`. */
  withLocked<T>(cqrsId: string, pkKeys: string[], fn: (tx: unknown, tombstones: Map<string, Tombstone>) => Promise<T>): Promise<T> {
    return this.prisma.transaction((tx) => this.locked(tx, cqrsId, pkKeys, (_, tombs) => fn((tx as unknown as { client: unknown }).client, tombs)))
  }

  /** Insert or replace an op's row inside a {@link withLocked} transaction (the caller gated it): row hooks' default writes. */
  async writeRow(tx: any, target: TableTarget, op: ApplyOp): Promise<void> {
    const layout = this.provider === 'postgresql' ? await this.layout(target) : undefined
    try {
      await run(new PrismaRunner(tx), upsertStatement(this.provider, target, [op], 'always', layout))
    } catch (e) {
      // Its columns may have changed since they were read: the retry reads them again.
      if (layout) this.layouts.delete(target.table)
      throw e
    }
  }

  async writeTombstones(tx: any, cqrsId: string, ops: ApplyOp[]): Promise<void> {
    if (ops.length) await run(new PrismaRunner(tx), tombstoneStatement(this.provider, cqrsId, ops))
  }

  async pruneTombstones(before: Date): Promise<number> {
    const iso = before.toISOString()
    const value = this.provider === 'mysql' ? iso.replace('T', ' ').replace('Z', '') : this.provider === 'sqlite' ? iso.replace('Z', '+00:00') : iso
    const p = this.provider === 'postgresql' ? '$1::timestamptz' : '?'
    return this.fast.execute(`DELETE FROM ${quoteIdent(this.provider, TOMBSTONES)} WHERE deleted_at < ${p}`, [value])
  }

  /** Release the store's own connections. */
  close(): Promise<void> {
    return this.fast.close()
  }

  private locked<T>(runner: SqlRunner, cqrsId: string, pkKeys: string[], fn: (tx: SqlRunner, tombstones: Map<string, Tombstone>) => Promise<T>): Promise<T> {
    const keys = [...new Set(pkKeys)].sort()
    return runner.transaction(async (tx) => {
      if (this.provider === 'postgresql') await pgLock(tx, cqrsId, keys)
      else if (this.provider === 'sqlite') {
        await tx.execute(`UPDATE ${TOMBSTONES} SET revision = revision WHERE 0 = 1`)
      }
      const rows: Array<{ pk: string; revision: number | bigint | string }> = []
      for (const part of withinParams(this.provider, keys, 1, 1)) {
        const s = tombstoneSelect(this.provider, cqrsId, part)
        rows.push(...(await tx.query<{ pk: string; revision: number | bigint | string }>(s.sql, s.params)))
      }
      return fn(tx, new Map(rows.map((r) => [String(r.pk), { revision: Number(r.revision) }])))
    })
  }
}

/**
 * Take the transaction-scoped advisory locks of (cqrs_id, pk) on PostgreSQL, in one sorted order so
 * two batches cannot deadlock; one row comes back, not one per lock.
 *
 * A pk's key is the first 8 bytes of sha1(`${cqrsId}\0${pk}`) read as a signed 64-bit integer: every
 * worker version must take the same key for the same pk (a worker of an older release may run beside
 * this one during an upgrade). The keys go as hex and PostgreSQL reads them (`bit(64)::bigint` is that
 * signed reading): a hex digest is several times cheaper than a Buffer one plus a BigInt, and the
 * order stays the signed one (the sign nibble flipped for the comparison).
 */
export function pgLockStatement(cqrsId: string, pkKeys: string[]): Statement {
  const flipped = [...new Set(pkKeys)].map((k) => flipSign(lockKeyHex(cqrsId, k))).sort()
  // One text of comma-separated keys, not a text[]: hex needs no quoting as an array element would.
  return { sql: `SELECT count(*) AS n FROM (SELECT pg_advisory_xact_lock(('x' || h)::bit(64)::bigint) FROM unnest(string_to_array($1, ',')) AS u(h)) l`, params: [flipped.map(flipSign).join(',')] }
}

async function pgLock(tx: SqlRunner, cqrsId: string, pkKeys: string[]): Promise<void> {
  if (pkKeys.length) await run(tx, pgLockStatement(cqrsId, pkKeys))
}

function run(tx: SqlRunner, s: Statement): Promise<number> {
  return tx.execute(s.sql, s.params)
}

/** The advisory-lock key of (cqrs_id, pk) as 16 hex digits (see {@link pgLockStatement}). */
function lockKeyHex(cqrsId: string, pk: string): string {
  const text = `${cqrsId}\0${pk}`
  // crypto.hash is the cheaper one-shot form (Node >= 20.12).
  return (oneShotHash ? oneShotHash('sha1', text, 'hex') : crypto.createHash('sha1').update(text).digest('hex')).slice(0, 16)
}

/** Hex of a 64-bit key with its top bit flipped: sorted as text, the keys come in their signed order. */
function flipSign(hex: string): string {
  return FLIPPED_NIBBLE[hex.charCodeAt(0) - (hex.charCodeAt(0) >= 97 ? 87 : 48)] + hex.slice(1)
}
const FLIPPED_NIBBLE = '89abcdef01234567'

const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash

/**
 * The most bind parameters one statement may carry: MySQL's protocol counts them in 16 bits, SQLite's
 * default limit is 32,766. PostgreSQL batches go as one JSON parameter and need no split.
 */
const MAX_PARAMS: Partial<Record<Provider, number>> = { mysql: 65_535, sqlite: 32_766 }

/**
 * `items` in runs short enough that a statement with `perItem` parameters each (and `fixed` more)
 * stays within the database's limit: a batch of a wide table goes as a few statements, not one that
 * the database refuses.
 */
export function withinParams<T>(provider: Provider, items: T[], perItem: number, fixed = 0): T[][] {
  const limit = MAX_PARAMS[provider]
  const size = limit ? Math.max(1, Math.floor((limit - fixed) / Math.max(1, perItem))) : items.length
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/** MySQL's default `max_allowed_packet` before 8.0 (4 MB), where the server's cannot be read. */
const DEFAULT_MAX_PACKET = 4 * 1024 * 1024

/**
 * `ops` as statements (`build`) that each fit in `limit` bytes, the server's `max_allowed_packet`:
 * halves of the ops until a statement's size, counted high (every character of text as 3 bytes, the
 * most UTF-8 and escaping make of it; bytes as 2), fits. A lone op whose values alone are more bytes
 * than the limit can never be written: a NonRetryableError saying what to raise, so that op goes to
 * the dead-letter queue and the rest of its batch applies.
 */
export function withinPacket(ops: ApplyOp[], build: (ops: ApplyOp[]) => Statement, limit: number): Array<[ApplyOp[], Statement]> {
  const st = build(ops)
  if (!Number.isFinite(limit) || statementBytes(st, 3, 2) <= limit) return [[ops, st]]
  if (ops.length > 1) {
    const half = Math.ceil(ops.length / 2)
    return [...withinPacket(ops.slice(0, half), build, limit), ...withinPacket(ops.slice(half), build, limit)]
  }
  const least = statementBytes(st, 0, 1)
  if (least > limit) {
    throw new NonRetryableError(`the row of pk ${ops[0].pkKey} is at least ${least} bytes, more than the replica database's max_allowed_packet (${limit} bytes), so no statement can carry it: ${RAISE_MAX_PACKET}`, { pk: ops[0].pkKey, bytes: least, maxAllowedPacket: limit })
  }
  return [[ops, st]]
}

/**
 * A statement's size in bytes with each text counted as `perChar` bytes a character (0: its UTF-8
 * length exactly) and each byte value as `perByte`.
 */
function statementBytes(st: Statement, perChar: number, perByte: number): number {
  let n = st.sql.length
  for (const p of st.params) {
    if (typeof p === 'string') n += perChar ? p.length * perChar : Buffer.byteLength(p)
    else if (p instanceof Uint8Array) n += p.byteLength * perByte
    else n += 24
  }
  return n
}

/** Ops grouped by the columns they carry (one statement each); usually one group. */
function byColumns(ops: ApplyOp[]): ApplyOp[][] {
  // In the message's key order, not sorted: the same set in another order only makes one more group.
  const groups: Array<{ keys: string[]; ops: ApplyOp[] }> = []
  for (const op of ops) {
    const g = groups.find((x) => sameKeys(x.keys, op.values))
    if (g) g.ops.push(op)
    else groups.push({ keys: [...op.values.keys()], ops: [op] })
  }
  return groups.map((g) => g.ops)
}

/** Whether `values` has exactly `keys`, in that order (no string built per op). */
function sameKeys(keys: string[], values: Map<string, unknown>): boolean {
  if (values.size !== keys.length) return false
  let i = 0
  for (const k of values.keys()) if (k !== keys[i++]) return false
  return true
}
