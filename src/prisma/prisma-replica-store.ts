import { createHash } from 'node:crypto'
import type { ApplyOp, ApplyResult, TableTarget } from '../replica/apply-op.js'
import type { Line } from '../core/dump-format.js'
import type { LoadCount, ReplicaStore, Tombstone } from '../replica/replica-store.js'
import { gateOf, type Gate } from '../replica/version-gate.js'
import { applyPreparedLoad, PgRowEncoder, prepareLoadAsync, type DirectLoadState } from './pg-bulk-load.js'
import type { Provider } from './internals.js'
import { deleteStatement, TOMBSTONES, tombstoneSelect, tombstoneStatement, upsertStatement, type Statement } from './replica-sql.js'
import { quoteIdent } from './sql.js'
import { PrismaRunner, sqlRunner, type SqlRunner } from './sql-runner.js'

/**
 * The replica store on PostgreSQL, MySQL/MariaDB and SQLite. A batch is one transaction: lock the
 * pks (PostgreSQL advisory locks; MySQL locking reads of the tombstones, gaps included; SQLite's single
 * writer), read tombstones, then one upsert per signal kind, one delete and one tombstone insert.
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
        for (const part of byColumns(idx.map((i) => ops[i]))) {
          const n = await run(tx, upsertStatement(this.provider, target, part, gate))
          if (n > 0) for (const op of part) results[ops.indexOf(op)] = 'applied'
        }
      }
      if (deletes.length) {
        const dops = deletes.map((i) => ops[i])
        await run(tx, deleteStatement(this.provider, target, dops))
        await run(tx, tombstoneStatement(this.provider, target.cqrsId, dops))
        for (const i of deletes) results[i] = 'applied'
      }
      return results
    })
  }

  /** Hooks get a Prisma transaction client as `tx`. */
  withLocked<T>(cqrsId: string, pkKeys: string[], fn: (tx: unknown, tombstones: Map<string, Tombstone>) => Promise<T>): Promise<T> {
    return this.prisma.transaction((tx) => this.locked(tx, cqrsId, pkKeys, (_, tombs) => fn((tx as unknown as { client: unknown }).client, tombs)))
  }

  /** Insert or replace an op's row inside a {@link withLocked} transaction (the caller gated it): row hooks' default writes. */
  async writeRow(tx: any, target: TableTarget, op: ApplyOp): Promise<void> {
    await run(new PrismaRunner(tx), upsertStatement(this.provider, target, [op], 'always'))
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
      if (this.provider === 'postgresql') {
        const locks = keys.map((k) => lockKey(cqrsId, k)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
        await tx.execute(`SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS u(k)`, [locks.map(String)])
      } else if (this.provider === 'sqlite') {
        await tx.execute(`UPDATE ${TOMBSTONES} SET revision = revision WHERE 0 = 1`)
      }
      const s = tombstoneSelect(this.provider, cqrsId, keys)
      const rows = keys.length ? await tx.query<{ pk: string; revision: number | bigint | string }>(s.sql, s.params) : []
      return fn(tx, new Map(rows.map((r) => [String(r.pk), { revision: Number(r.revision) }])))
    })
  }
}

function run(tx: SqlRunner, s: Statement): Promise<number> {
  return tx.execute(s.sql, s.params)
}

/** A stable signed 64-bit advisory-lock key for (cqrs_id, pk). */
function lockKey(cqrsId: string, pk: string): bigint {
  return createHash('sha1').update(`${cqrsId}\0${pk}`).digest().readBigInt64BE(0)
}

function byColumns(ops: ApplyOp[]): ApplyOp[][] {
  const groups = new Map<string, ApplyOp[]>()
  for (const op of ops) {
    const sig = [...op.values.keys()].sort().join(',')
    const g = groups.get(sig)
    if (g) g.push(op)
    else groups.set(sig, [op])
  }
  return [...groups.values()]
}
