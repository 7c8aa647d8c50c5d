/**
 * Every django-cqrs capture (test/fixtures/django-cqrs/*.json) published to RabbitMQ as django-cqrs
 * sent it, consumed by the replica, and each stored field compared with the capture: datetimes to the
 * microsecond, decimals, JSON, and the foreign key sent under the relation's name (`author`) landing
 * in `author_id`. The expected rows follow from the captures by the protocol's rules (SAVE if newer,
 * SYNC unless older, DELETE leaves a tombstone), not from the code under test.
 */
import amqp from 'amqplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseJson, stringifyJson } from '../../src/core/json.js'
import { silentLogger } from '../../src/core/logger.js'
import { cqrsReplica, type Replica } from '../../src/prisma/cqrs-replica.js'
import { rabbitmq } from '../../src/transport/rabbitmq/index.js'
import { uniqueSuffix } from '../support/rabbit.js'
import { deleteQueues } from '../support/rabbit-cleanup.js'
import { AMQP_URL, createTestDatabase, DIALECTS, type TestDatabase } from '../support/databases.js'
import { fixture, messageFixtures } from '../support/fixtures.js'
import { expectedText, storedTexts, type ColumnSpec } from './replica-support.js'

const datetime = (column: string): ColumnSpec => ({ column, key: column, compare: 'datetime', pg: 'timestamptz(6)', mysql: 'DATETIME(6)' })
const integer = (column: string, key = column): ColumnSpec => ({ column, key, compare: 'cast', pg: 'integer', mysql: 'SIGNED' })
const text = (column: string): ColumnSpec => ({ column, key: column, compare: 'text', pg: 'text', mysql: 'CHAR' })
const decimal = (column: string): ColumnSpec => ({ column, key: column, compare: 'cast', pg: 'numeric(18,2)', mysql: 'DECIMAL(18,2)' })
const boolean = (column: string): ColumnSpec => ({ column, key: column, compare: 'cast', pg: 'boolean', mysql: 'SIGNED' })

/** The replica tables of the captures' cqrs_ids, keyed by the wire keys django-cqrs sends. */
const TABLES: Record<string, { table: string; columns: ColumnSpec[] }> = {
  author: {
    table: 'author_ref',
    columns: [text('name'), { column: 'birth_date', key: 'birth_date', compare: 'cast', pg: 'date', mysql: 'DATE' }, integer('rating'), decimal('balance'), datetime('last_seen'), boolean('is_active'), { column: 'profile', key: 'profile', compare: 'json', pg: 'jsonb', mysql: 'JSON' }, text('nickname'), text('external_id'), integer('cqrs_revision'), datetime('cqrs_updated')],
  },
  book: { table: 'book_ref', columns: [text('title'), integer('author_id', 'author'), decimal('price'), datetime('published_at'), integer('cqrs_revision'), datetime('cqrs_updated')] },
}

interface Capture {
  name: string
  body: string
  message: { signal_type: string; cqrs_id: string; instance_pk: number; instance_data: Record<string, unknown> }
}

/** The final state the captures lead to, by the protocol's rules, in publishing order. */
function expectedRows(captures: Capture[]): Map<string, Map<string, Record<string, unknown> | null>> {
  const out = new Map<string, Map<string, Record<string, unknown> | null>>()
  const revisions = new Map<string, number>()
  const tombstones = new Map<string, number>()
  for (const { message: m } of captures) {
    const rows = out.get(m.cqrs_id) ?? new Map<string, Record<string, unknown> | null>()
    out.set(m.cqrs_id, rows)
    const key = `${m.cqrs_id}:${m.instance_pk}`
    const rev = m.instance_data.cqrs_revision as number
    const stored = revisions.get(key)
    if (m.signal_type === 'DELETE') {
      if (stored === undefined || stored <= rev) rows.set(String(m.instance_pk), null)
      tombstones.set(key, Math.max(rev, tombstones.get(key) ?? -1))
      revisions.delete(key)
      continue
    }
    if ((tombstones.get(key) ?? -1) >= rev) continue
    if (stored === undefined || stored < rev || (m.signal_type === 'SYNC' && stored === rev)) {
      rows.set(String(m.instance_pk), m.instance_data)
      revisions.set(key, rev)
    }
  }
  return out
}

describe.each(DIALECTS.filter((d) => d !== 'sqlite'))('django-cqrs captures consumed from RabbitMQ into %s', { timeout: 120_000 }, (dialect) => {
  let db: TestDatabase
  let replica: Replica | undefined
  const suffix = uniqueSuffix()
  const exchange = `cqrs_test_${suffix}`
  const queue = `captures_${suffix}`

  beforeAll(async () => {
    db = await createTestDatabase(dialect, 'capt')
  })
  afterAll(async () => {
    await replica?.stop()
    await deleteQueues(queue)
    const conn = await amqp.connect(AMQP_URL)
    const ch = await conn.createChannel()
    for (const x of [exchange, `${exchange}.delay`]) await ch.deleteExchange(x).catch(() => {})
    await conn.close().catch(() => {})
    await db?.drop()
  })

  it('stores every field as the capture carries it', async () => {
    // The captures' `expires` passed long ago: this replica applies them anyway, as after `dead-letters retry`.
    replica = cqrsReplica({
      prisma: await db.client(),
      transport: rabbitmq({ url: AMQP_URL, exchange, logger: silentLogger }),
      queue,
      logger: silentLogger,
      honorExpires: false,
      handlers: { author: { model: 'authorRef' }, book: { model: 'bookRef', fields: { author: 'authorId' } } },
    })
    await replica.start()
    const captures: Capture[] = messageFixtures()
      .sort()
      .map((name) => {
        const body = fixture(name).body
        return { name, body, message: parseJson(body) as Capture['message'] }
      })
    const conn = await amqp.connect(AMQP_URL)
    try {
      const ch = await conn.createConfirmChannel()
      // Retries and dead letters are re-published to this queue's own key, as `cqrs dead-letters retry` does.
      for (const c of captures) ch.publish(exchange, fixture(c.name).routing_key === c.message.cqrs_id ? c.message.cqrs_id : `cqrs.${queue}.${c.message.cqrs_id}`, Buffer.from(c.body), { contentType: 'text/plain', deliveryMode: 2 })
      await ch.waitForConfirms()
    } finally {
      await conn.close()
    }
    const stats = replica.stats
    await expect.poll(() => stats.applied + stats.skipped + stats.retried + stats.deadLettered, { timeout: 60_000, interval: 50 }).toBe(captures.length)
    expect(stats.retried + stats.deadLettered).toBe(0)

    const differences: string[] = []
    for (const [cqrsId, rows] of expectedRows(captures)) {
      const { table, columns } = TABLES[cqrsId]
      const stored = await storedTexts(db, table, columns)
      for (const [pk, data] of rows) {
        const got = stored.get(pk)
        if (data === null) {
          if (got) differences.push(`${table} ${pk}: deleted on the master, still on the replica`)
          continue
        }
        if (!got) {
          differences.push(`${table} ${pk}: missing`)
          continue
        }
        for (const c of columns) {
          const v = data[c.key]
          const wire = v === null || v === undefined ? null : c.compare === 'cast' && c.pg === 'boolean' && dialect === 'mysql' ? (v ? '1' : '0') : stringifyJson(v)
          const want = await expectedText(db, c, wire)
          if (got[c.column] !== want) differences.push(`${table} ${pk} ${c.column}: capture ${wire} -> stored ${got[c.column]}, expected ${want}`)
        }
      }
    }
    expect(differences).toEqual([])
    // What the captures are there to show: microseconds, the decimal, the foreign key under its relation name.
    const [book] = await db.query<{ author_id: unknown; published_at: unknown }>(
      dialect === 'postgresql' ? `SELECT author_id, to_char(published_at AT TIME ZONE 'UTC', 'HH24:MI:SS.US') AS published_at FROM book_ref WHERE id = 1` : `SELECT author_id, DATE_FORMAT(published_at, '%H:%i:%s.%f') AS published_at FROM book_ref WHERE id = 1`,
    )
    expect({ author: Number(book.author_id), at: book.published_at }).toEqual({ author: 1, at: '03:36:52.933232' })
  })
})
