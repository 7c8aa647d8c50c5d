/**
 * On PostgreSQL a claim starts above the outbox ids that hold nothing left to publish
 * (src/prisma/claim-floor.ts), so while a snapshot is held elsewhere (a report, a dump) it does not
 * walk past every row it deleted. What must hold all the same: an event whose transaction took its
 * id early and committed late, after the relay had published rows with higher ids, is published, and
 * before the next event of its own row; and the floor does rise, also under a held snapshot. A row
 * below the floor (only an explicit id can put one there) is found by a claim from the start.
 */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ClaimFloor } from '../../src/prisma/claim-floor.js'
import { createTestDatabase, DIALECTS, type TestDatabase } from '../support/databases.js'
import { pgRelay } from '../support/relay.js'
import { testQueue, uniqueSuffix } from '../support/rabbit.js'

describe.skipIf(!DIALECTS.includes('postgresql'))('PostgreSQL: the claim floor', () => {
  let db: TestDatabase
  let prisma: any
  const cqrsId = `floor_${uniqueSuffix()}`
  const body = (pk: string, revision: number) => JSON.stringify({ signal_type: 'SAVE', cqrs_id: cqrsId, instance_pk: pk, instance_data: { id: pk, cqrs_revision: revision } })
  const insert = (pk: string, revision: number) => `INSERT INTO cqrs_outbox (cqrs_id, pk, routing_key, body) VALUES ('${cqrsId}', '${pk}', '${cqrsId}', '${body(pk, revision)}') RETURNING id`
  const commitRows = async (prefix: string, n: number) => {
    for (let i = 0; i < n; i++) await db.exec(insert(`${prefix}-${i}`, 1))
  }

  beforeAll(async () => {
    db = await createTestDatabase('postgresql', 'floor')
    prisma = await db.client()
  })
  afterAll(async () => {
    await prisma?.$disconnect()
    await db?.drop()
  })

  function relay() {
    const { relay: r, store } = pgRelay(prisma, { batchSize: 8 })
    // Where its next claim would start (white-box: nothing outside the store can see it).
    const floor = () => (store as unknown as { floor: ClaimFloor }).floor.start().floor
    return { r, floor }
  }

  it("an event committed late below what was published leaves, before its row's next event; the floor rises, also under a held snapshot", async () => {
    const q = await testQueue([cqrsId], 'floor')
    const { r, floor } = relay()
    const late = new pg.Client({ connectionString: db.url })
    const reader = new pg.Client({ connectionString: db.url })
    await late.connect()
    await reader.connect()
    try {
      // Takes its id first, commits after three rounds of younger events were published.
      await late.query('BEGIN')
      const lateId = BigInt((await late.query<{ id: string }>(insert('X', 1))).rows[0].id)
      for (const round of ['a', 'b', 'c']) {
        await commitRows(round, 20)
        expect(await r.drain(30_000)).toBe(20)
        // It cannot pass the open transaction's id.
        const f = floor()
        expect(f === null || f < lateId, `floor ${f} passed ${lateId}`).toBe(true)
      }
      await late.query('COMMIT')
      // The row's next event, committed after the first (as its next writer would, after the row lock).
      await db.exec(insert('X', 2))
      expect(await r.drain(30_000)).toBe(2)

      // Under a snapshot held by a reader, the floor still rises past what was published. It rises
      // once the server's oldest running xid passes a claim's reach: the transactions of tests running
      // beside this one (in any database) can hold that back, some for 25 s on purpose (a relay frozen
      // mid-claim, a partitioned leader), so rounds go on until it has risen, for up to 90 s (three
      // rounds do it on a quiet server).
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
      await reader.query('SELECT count(*) FROM cqrs_outbox')
      let rounds = 0
      const until = Date.now() + 90_000
      const risen = () => floor() !== null && floor()! > lateId
      for (;;) {
        await commitRows(`r${rounds}`, 20)
        expect(await r.drain(30_000)).toBe(20)
        rounds++
        if (rounds >= 3 && (risen() || Date.now() > until)) break
        if (rounds >= 3) await new Promise((resolve) => setTimeout(resolve, 50))
      }
      expect(floor(), `the floor after ${rounds} rounds under a held snapshot`).not.toBeNull()
      expect(floor()! > lateId).toBe(true)
      await reader.query('COMMIT')

      // Only an explicit id can land below the floor: claims above it do not see that row, and a
      // drain that finds it left looks from the start. (The relay's loop has its claim from the start
      // at least once a second for it.)
      await db.exec(insert('Y', 1).replace('(cqrs_id, pk,', '(id, cqrs_id, pk,').replace("VALUES ('", "VALUES (0, '"))
      await db.exec(insert('Z', 1))
      expect(await r.drain(30_000)).toBe(2)

      const got = await q.barrier()
      const x = got.filter((m) => m.body.instance_pk === 'X').map((m) => m.body.instance_data.cqrs_revision)
      expect(x).toEqual([1, 2])
      expect(got.slice(-2).map((m) => m.body.instance_pk)).toEqual(['Z', 'Y'])
      expect(got).toHaveLength((3 + rounds) * 20 + 4)
      expect(new Set(got.map((m) => m.properties.messageId)).size).toBe(got.length)
    } finally {
      await r.stop()
      await late.end().catch(() => {})
      await reader.end().catch(() => {})
      await q.delete()
    }
  }, 180_000)
})
