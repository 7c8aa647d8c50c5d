/**
 * While a transaction on the master holds an old snapshot (a report, a dump, a session left idle in
 * its transaction), PostgreSQL keeps every outbox row deleted since it began, and each claim walks
 * past them in the outbox's index: claims slow down the longer it stays open (BENCHMARKS.md: from
 * 1.7 to 17 ms in a minute at 1,000 writes/s). The relay cannot end it, so it names it: a claim
 * slower than `slowClaimMs` makes it look for a session whose transaction is older than
 * `snapshotAgeMs` and warn with its pid, state and application, at most once a minute; with no such
 * session it stays quiet. Both thresholds are set to 0 here, so any claim counts as slow and any
 * open snapshot as old (but where no session should be named: there a second); the age filter is
 * checked with the holder below it.
 */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Logger } from '../../src/core/logger.js'
import { createTestDatabase, DIALECTS, type TestDatabase } from '../support/databases.js'
import { pgRelay } from '../support/relay.js'
import { uniqueSuffix } from '../support/rabbit.js'
import { silentLogger } from '../../src/core/logger.js'

describe.skipIf(!DIALECTS.includes('postgresql'))('PostgreSQL: the relay names an old snapshot when claims turn slow', () => {
  let db: TestDatabase
  let prisma: any
  const cqrsId = `slow_${uniqueSuffix()}`

  beforeAll(async () => {
    db = await createTestDatabase('postgresql', 'slowclaim')
    prisma = await db.client()
  })
  afterAll(async () => {
    await prisma?.$disconnect()
    await db?.drop()
  })

  /** A relay with both thresholds at 0 (unless given), its warnings collected. */
  function relayWith(snapshotAgeMs = 0) {
    const warnings: Array<{ msg: string; fields?: Record<string, unknown> }> = []
    const logger: Logger = { ...silentLogger, warn: (msg, fields) => void warnings.push({ msg, fields }) }
    const { relay } = pgRelay(prisma, { logger, slowClaimMs: 0, snapshotAgeMs })
    return { relay, warnings }
  }
  const fill = (n: number) =>
    db.exec(`INSERT INTO cqrs_outbox (cqrs_id, pk, routing_key, body) SELECT '${cqrsId}', g::text, '${cqrsId}', '{"signal_type":"SAVE","cqrs_id":"${cqrsId}"}' FROM generate_series(1, ${n}) g`)

  /** A session in a REPEATABLE READ transaction that has taken its snapshot, idle since. */
  async function holder(): Promise<{ pid: number; end(): Promise<void> }> {
    const c = new pg.Client({ connectionString: db.url, application_name: 'nightly-report' })
    await c.connect()
    const pid = (await c.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0].p
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
    await c.query('SELECT count(*) FROM cqrs_outbox')
    return { pid, end: async () => void (await c.query('COMMIT'), await c.end()) }
  }

  it('names the session, once, while it holds its snapshot; events flow all the same', async () => {
    const h = await holder()
    const { relay, warnings } = relayWith()
    try {
      await fill(120)
      expect(await relay.drain(30_000)).toBe(120)
      // The first warning's look has ended: the second drain's slow claims find the minute not over.
      await (relay as unknown as { explaining: Promise<void> | null }).explaining
      expect(warnings).toHaveLength(1)
      await fill(120)
      expect(await relay.drain(30_000)).toBe(120)
    } finally {
      await relay.stop()
      await h.end()
    }
    expect(warnings).toHaveLength(1)
    expect(warnings[0].msg).toMatch(new RegExp(`^cqrs relay: claiming outbox rows took \\d+ ms: a transaction open for \\d+\\.\\d s \\(pid ${h.pid}, idle in transaction, user \\w+, application 'nightly-report'\\) makes the database keep every outbox row deleted since it began`))
    expect(warnings[0].msg).toContain('End it (run long reports and dumps on a standby)')
    expect(warnings[0].fields).toMatchObject({ pid: h.pid, state: 'idle in transaction', query: 'SELECT count(*) FROM cqrs_outbox' })
    expect(await db.query('SELECT count(*)::int AS n FROM cqrs_outbox')).toEqual([{ n: 0 }])
  })

  it('stays quiet with no open snapshot, or one younger than snapshotAgeMs', async () => {
    for (const setup of ['none', 'young'] as const) {
      const h = setup === 'young' ? await holder() : null
      // 'none': a second, not 0: at 0 the relay's own queries on its other connections (the drain's
      // backlog count, in flight while a slow claim is being explained) count as open snapshots.
      const { relay, warnings } = relayWith(setup === 'young' ? 3_600_000 : 1_000)
      try {
        await fill(60)
        expect(await relay.drain(30_000)).toBe(60)
      } finally {
        await relay.stop() // waits for the look it started
        await h?.end()
      }
      expect(warnings, setup).toEqual([])
    }
  })
})
