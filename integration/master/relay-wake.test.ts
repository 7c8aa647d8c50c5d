/**
 * On PostgreSQL the capture triggers come with the outbox's wake-up trigger: one `cqrs relay` of the
 * outbox (the leader) is woken by commits while it sleeps. The relays here poll every ten minutes,
 * so every burst of commits that arrives within the test's timeout was published because a commit
 * woke the leader, including commits that were in flight while it went to sleep (it waits for them,
 * then looks once more). A leader killed, or whose LISTEN session ends, hands the part on.
 */
import { randomUUID } from 'node:crypto'
import type { ChildProcess } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cqrs, spawnCqrs, stderrOf, stop, waitForStderr } from '../support/cli.js'
import { rng } from '../support/chaos.js'
import { AMQP_URL, createTestDatabase, DIALECTS, type TestDatabase } from '../support/databases.js'
import { committedEvents } from '../support/outbox.js'
import { allArrived, eventCounts, revisionsByPk, testQueue, uniqueSuffix, type TestQueue } from '../support/rabbit.js'

const TEN_MINUTES = String(10 * 60_000)
const SEED = Number(process.env.CQRS_SEED ?? Math.floor(Math.random() * 2 ** 31))

describe.runIf(DIALECTS.includes('postgresql'))('a separate relay on PostgreSQL is woken by commits (the wake-up trigger)', () => {
  let db: TestDatabase
  let q: TestQueue
  let prisma: any
  const relays: ChildProcess[] = []
  const suffix = `_${uniqueSuffix()}`
  const env = () => ({ CQRS_TEST_DIALECT: 'postgresql', CQRS_MASTER_URL: db.url, CQRS_ID_SUFFIX: suffix, AMQP_URL })

  beforeAll(async () => {
    db = await createTestDatabase('postgresql', 'wake')
    q = await testQueue([`author${suffix}`], 'wake')
    prisma = await db.client({ poolSize: 8 })
  })
  afterAll(async () => {
    for (const r of relays) await stop(r, 'SIGKILL').catch(() => {})
    await prisma?.$disconnect()
    await q?.delete()
    await db?.drop()
  }, 60_000)

  it(`comes with the capture triggers; bursts of concurrent commits leave without waiting for the poll, across a killed leader and a lost session (seed ${SEED}, CQRS_SEED to repeat)`, async () => {
    // As a user installs it: with the capture triggers, in the migration `cqrs triggers` prints.
    const printed = await cqrs(['triggers'], env())
    expect(printed.code, printed.stderr).toBe(0)
    expect(printed.stdout).toMatch(/CREATE CONSTRAINT TRIGGER cqrs_outbox_wake AFTER INSERT ON "cqrs_outbox" DEFERRABLE INITIALLY DEFERRED/)
    const applied = await cqrs(['triggers', '--apply'], env())
    expect(applied.code, applied.stderr).toBe(0)
    expect(applied.stderr).toMatch(/and the outbox wake-up trigger/)

    // Info lines say which relay leads.
    const relayEnv = { ...env(), CQRS_LOG_LEVEL: 'info' }
    const first = spawnCqrs(['relay', '--poll-ms', TEN_MINUTES], relayEnv)
    relays.push(first)
    await waitForStderr(first, /listening for outbox wake-ups, leading/)
    const second = spawnCqrs(['relay', '--poll-ms', TEN_MINUTES], relayEnv)
    relays.push(second)
    await waitForStderr(second, /another relay leads on this outbox \(commits wake it\)/)
    const status = await cqrs(['status'], env())
    expect(status.stdout).toMatch(new RegExp(`leading relay \\(woken by commits\\): pid \\d+`))

    const random = rng(SEED)
    const pks: number[] = []
    /**
     * One burst: 1 to 4 writes, each its own commit on its own connection, started up to 2 ms apart,
     * so that commits land while the leader publishes the burst before, sleeps, or goes to sleep.
     * Waits until every event committed so far arrived: nothing but a wake-up publishes them.
     */
    const burst = async (label: string) => {
      const writes = 1 + Math.floor(random() * 4)
      await Promise.all(
        Array.from({ length: writes }, async (_, i) => {
          const delay = Math.floor(random() * 3)
          if (delay) await new Promise((r) => setTimeout(r, delay))
          const update = pks.length > 4 && random() < 0.5
          if (update) {
            const id = pks[Math.floor(random() * pks.length)]
            await prisma.author.update({ where: { id }, data: { name: `${label}-${i}` } })
          } else pks.push((await prisma.author.create({ data: { name: `${label}-${i}`, externalId: randomUUID() } })).id)
        }),
      )
      const expected = await committedEvents(db)
      await q.untilMatch(allArrived(expected), `the events of burst ${label} (seed ${SEED})`, 30_000)
    }

    for (let b = 0; b < 120; b++) await burst(`a${b}`)

    // The leader dies: the other relay takes the lead within its election interval (1 s) and is woken from then on.
    await stop(first, 'SIGKILL')
    await waitForStderr(second, /listening for outbox wake-ups, leading/)
    for (let b = 0; b < 60; b++) await burst(`b${b}`)

    // Its LISTEN session ends (killed on the server): it reconnects, leads again, and is woken as before.
    const leader = await cqrs(['status', '--json'], env())
    const pid = JSON.parse(leader.stdout).master.relays.leader.pid
    expect(await db.query(`SELECT pg_terminate_backend(${Number(pid)}) AS ok`)).toEqual([{ ok: true }])
    await waitForStderr(second, /LISTEN connection was lost/)
    for (let b = 0; b < 60; b++) await burst(`c${b}`)
    expect(stderrOf(second).match(/listening for outbox wake-ups, leading/g), 'it led twice: once the first relay died, once it reconnected').toHaveLength(2)

    // Every event arrived, each row's revisions first arriving in order (a leader killed between a
    // publish and its deletion has its rows published again by the next: at least once).
    const expected = await committedEvents(db)
    const counts = eventCounts(q.received)
    expect([...expected].filter((k) => !counts.has(k)), 'missing').toEqual([])
    for (const [pk, revisions] of revisionsByPk(q.received)) {
      const firsts = [...new Set(revisions)]
      expect(firsts, `revisions of ${pk} in order`).toEqual([...firsts].sort((x, y) => x - y))
    }
  }, 240_000)
})
