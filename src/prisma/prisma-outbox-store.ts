import type { OutboxRow, OutboxStore } from '../master/outbox-store.ts'
import type { ModelMeta, Provider } from './internals.ts'
import { quoteIdent } from './sql.ts'

/**
 * The outbox on PostgreSQL, MySQL/MariaDB and SQLite through a Prisma client.
 * Claiming locks the oldest rows with `FOR UPDATE` (not SKIP LOCKED): a second relay waits for the
 * first to commit instead of taking younger rows, so events of one row leave in order and none twice.
 * SQLite has one writer: a dummy write takes the write lock first. A relay that dies mid-batch has its
 * transaction rolled back by the database, and its rows are taken by the next claim.
 */
export class PrismaOutboxStore implements OutboxStore {
  private readonly table: string
  private readonly col: (field: string) => string

  constructor(
    private readonly client: any,
    private readonly provider: Provider,
    meta: ModelMeta,
  ) {
    this.table = quoteIdent(provider, meta.table)
    this.col = (field) => quoteIdent(provider, meta.fields.find((f) => f.name === field)?.column ?? field)
  }

  async claim(limit: number, publish: (rows: OutboxRow[]) => Promise<void>): Promise<number> {
    const { table, col } = this
    // A cheap look without a transaction first: an idle relay polls often.
    const peek: unknown[] = await this.client.$queryRawUnsafe(`SELECT ${col('id')} FROM ${table} LIMIT 1`)
    if (peek.length === 0) return 0
    return this.client.$transaction(
      async (tx: any) => {
        if (this.provider === 'sqlite') await tx.$executeRawUnsafe(`UPDATE ${table} SET ${col('pk')} = ${col('pk')} WHERE ${col('id')} = -1`)
        const lock = this.provider === 'sqlite' ? '' : ' FOR UPDATE'
        const rows: Array<{ id: bigint | number; cqrs_id: string; routing_key: string; format: number | bigint; body: string }> = await tx.$queryRawUnsafe(
          `SELECT ${col('id')} AS id, ${col('cqrsId')} AS cqrs_id, ${col('routingKey')} AS routing_key, ${col('format')} AS format, ${col('body')} AS body FROM ${table} ORDER BY ${col('id')} LIMIT ${Math.floor(limit)}${lock}`,
        )
        if (rows.length === 0) return 0
        await publish(rows.map((r) => ({ id: r.id, cqrsId: r.cqrs_id, routingKey: r.routing_key, format: Number(r.format), body: r.body })))
        await tx.$executeRawUnsafe(`DELETE FROM ${table} WHERE ${col('id')} IN (${rows.map((r) => String(r.id)).join(',')})`)
        return rows.length
      },
      { timeout: 60_000, maxWait: 30_000, ...(this.provider === 'mysql' ? { isolationLevel: 'ReadCommitted' } : {}) },
    )
  }

  async backlog(): Promise<{ count: number; oldestAt: Date | null }> {
    const rows: Array<{ n: bigint | number; oldest: Date | string | null }> = await this.client.$queryRawUnsafe(
      `SELECT COUNT(*) AS n, MIN(${this.col('createdAt')}) AS oldest FROM ${this.table}`,
    )
    const r = rows[0]
    const oldest = r?.oldest == null ? null : r.oldest instanceof Date ? r.oldest : new Date(typeof r.oldest === 'number' ? r.oldest : String(r.oldest).replace(' ', 'T') + (/[zZ+]/.test(String(r.oldest).slice(10)) ? '' : 'Z'))
    return { count: Number(r?.n ?? 0), oldestAt: oldest }
  }
}
