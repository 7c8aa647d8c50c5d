/**
 * The operating tools as users run them: real `cqrs` bin processes (dist/cli/main.js) in shell pipelines, a master and a
 * replica database each, RabbitMQ, and a real `cqrs consume` applying what diff-sync sends. A replica
 * made to drift (rows missing, stale, extra) ends equal to the master, row for row.
 */
import type { ChildProcess } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnCqrs, stop, waitForStderr } from '../support/cli.js'
import { DIALECTS, type Dialect } from '../support/databases.js'
import { plain, stage, until, type Stage } from './support.js'

// PostgreSQL always; the others as CQRS_TEST_DIALECTS says (default: all three).
const dialects: Dialect[] = DIALECTS

const AUTHORS = 240

async function seedAuthors(prisma: any, n: number): Promise<void> {
  await prisma.author.createMany({
    data: Array.from({ length: n }, (_, i) => ({
      id: i + 1,
      name: `Author ${i + 1} "quoted", ünïcode`,
      birthDate: i % 3 ? new Date(Date.UTC(1950, 0, 1 + i)) : null,
      rating: i,
      balance: `${i}.${String(i % 100).padStart(2, '0')}`,
      lastSeen: i % 4 ? new Date(Date.UTC(2026, 10, 23, 3, 36, 52, i % 1000)) : null,
      isActive: i % 2 === 0,
      ...(i % 5 ? { profile: { tags: ['a', `t${i}`], score: i / 2, nested: { k: i } } } : {}),
      nickname: i % 6 ? `nick-${i}` : null,
      externalId: `ext-${i}`,
      cqrsRevision: 2 + (i % 3),
    })),
  })
}

async function authorsEqual(s: Stage, masterDb: any, replicaDb: any): Promise<{ master: unknown[]; replica: unknown[] }> {
  const master = (await masterDb.author.findMany({ orderBy: { id: 'asc' } })).map((r: any) => {
    const { books: _b, ...rest } = r
    return plain(rest)
  })
  const replica = (await replicaDb.authorRef.findMany({ orderBy: { id: 'asc' } })).map(plain)
  return { master, replica }
}

describe.each(dialects)('tool pipelines on %s', { timeout: 240_000 }, (dialect) => {
  let s: Stage
  let masterDb: any
  let replicaDb: any
  let consumer: ChildProcess | undefined
  const id = () => `author${s.suffix}`

  beforeAll(async () => {
    s = await stage(dialect)
    masterDb = await s.master.client()
    replicaDb = await s.replica.client()
    await seedAuthors(masterDb, AUTHORS)
  })
  afterAll(async () => {
    if (consumer) await stop(consumer)
    await s?.drop()
  })

  it('bulk-dump | bulk-load reproduces the table', async () => {
    const r = await s.sh(`cqrs bulk-dump --cqrs-id ${id()} --batch 50 | cqrs bulk-load -i - --batch 70`)
    expect(r.stderr).toMatch(new RegExp(`loaded ${AUTHORS} rows of ${id()} into author_ref: ${AUTHORS} applied, 0 skipped`))
    expect(r.stderr).toMatch(new RegExp(`dumped ${AUTHORS} rows of ${id()} in [\\d.]+ s \\(`))
    expect(r.code).toBe(0)
    const { master, replica } = await authorsEqual(s, masterDb, replicaDb)
    expect(replica).toEqual(master)
    // Loading the same dump again changes nothing (version-gated, equal revisions overwrite with equal data).
    const again = await s.sh(`cqrs bulk-dump --cqrs-id ${id()} | cqrs bulk-load -i -`)
    expect(again.code).toBe(0)
    expect((await authorsEqual(s, masterDb, replicaDb)).replica).toEqual(master)
  })

  it('a drifted replica (rows missing, stale, extra) is repaired by the two pipelines', async () => {
    // Drift made with plain SQL, behind the library's back.
    await s.replica.exec(`DELETE FROM author_ref WHERE id <= 10`)
    await s.replica.exec(`UPDATE author_ref SET name = 'stale', rating = -1, cqrs_revision = 1 WHERE id > 100 AND id <= 115`)
    const extra = dialect === 'postgresql' ? `'2026-11-23 03:00:00+00'` : `'2026-11-23 03:00:00'`
    await s.replica.exec(`INSERT INTO author_ref (id, name, external_id, cqrs_revision, cqrs_updated) VALUES (5001, 'extra', 'x', 0, ${extra}), (5002, 'extra', 'y', 7, ${extra})`)

    // Each stage on its own: diff-replica exits 1 when it found drift, like diff(1).
    const listed = await s.sh(`cqrs diff-master --cqrs-id ${id()} --batch 64`)
    expect(listed.code).toBe(0)
    expect(listed.stdout.split('\n')[0]).toMatch(new RegExp(`^${id()},\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d(\\.\\d{6})?\\+00:00$`))
    const drift = await s.sh(`cqrs diff-replica`, listed.stdout)
    expect(drift.code).toBe(1)
    expect(drift.stderr).toMatch(/25 drifted \(10 missing, 15 at another revision\)/)
    expect(drift.stdout.split('\n')[0]).toBe(`${listed.stdout.split('\n')[0]},${s.queue}`)

    consumer = spawnCqrs(['consume'], s.env)
    await waitForStderr(consumer, /ready/)

    const repaired = await s.sh(`cqrs diff-master --cqrs-id ${id()} --batch 64 | cqrs diff-replica | cqrs diff-sync`)
    expect(repaired.stderr).toMatch(new RegExp(`sent 25 SYNC messages of ${id()} to queue ${s.queue}`))
    expect(repaired.code).toBe(0)
    await until(async () => {
      const n = await replicaDb.authorRef.count({ where: { OR: [{ id: { lte: 10 } }, { name: 'stale' }] } })
      return n === 10
    }, 'the SYNCs to be applied')

    const deleted = await s.sh(`cqrs deleted-diff-replica --cqrs-id ${id()} --batch 64 | cqrs deleted-diff-master | cqrs deleted-sync-replica`)
    expect(deleted.stderr).toMatch(new RegExp(`deleted 2 rows of ${id()} from author_ref`))
    expect(deleted.code).toBe(0)

    const { master, replica } = await authorsEqual(s, masterDb, replicaDb)
    expect(replica).toEqual(master)

    // Nothing left to repair: both diffs exit 0 and list nothing.
    const clean = await s.sh(`cqrs diff-master --cqrs-id ${id()} | cqrs diff-replica`)
    expect(clean.code).toBe(0)
    expect(clean.stdout.trim().split('\n')).toHaveLength(1)
    const cleanDeleted = await s.sh(`cqrs deleted-diff-replica --cqrs-id ${id()} | cqrs deleted-diff-master`)
    expect(cleanDeleted.code).toBe(0)
    // The deleted rows left tombstones: a late SAVE of them cannot bring them back.
    const tombs = await s.replica.query<{ pk: string }>(`SELECT pk FROM cqrs_tombstone WHERE cqrs_id = '${id()}' ORDER BY pk`)
    expect(tombs.map((t) => String(t.pk))).toEqual(['5001', '5002'])
  })

  it('cqrs sync re-publishes the rows a filter selects, to one queue', async () => {
    await s.replica.exec(`UPDATE author_ref SET name = 'stale', cqrs_revision = 0 WHERE id IN (20, 21, 22)`)
    const r = await s.sh(`cqrs sync --cqrs-id ${id()} --filter '{"id":{"in":[20,21,22]}}' --queue ${s.queue}`)
    expect(r.stderr).toMatch(new RegExp(`published 3 SYNC messages of ${id()} to queue ${s.queue} \\(routing key cqrs\\.${s.queue}\\.${id()}\\)`))
    expect(r.code).toBe(0)
    await until(async () => (await replicaDb.authorRef.count({ where: { name: 'stale' } })) === 0, 'the SYNCs of cqrs sync')
    const bad = await s.sh(`cqrs sync --cqrs-id ${id()} --filter '{"nmae":"x"}'`)
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--filter: Author has no field 'nmae'.*Did you mean 'name'\?/)
    const badValue = await s.sh(`cqrs sync --cqrs-id ${id()} --filter '{"id":{"gt":"ten"}}'`)
    expect(badValue.code).toBe(2)
    expect(badValue.stderr).toMatch(/--filter is not a valid Prisma where for Author/)
  })

  it('cqrs status reports the outbox and the queue', async () => {
    const r = await s.sh(`cqrs status --json`)
    expect(r.code).toBe(0)
    const report = JSON.parse(r.stdout)
    expect(report.master).toMatchObject({ outboxBacklog: 0, oldestEventAgeSeconds: null })
    expect(report.replica).toMatchObject({ queue: s.queue, consumers: 1, deadLettered: 0 })
    const text = await s.sh(`cqrs status`)
    expect(text.stdout).toMatch(new RegExp(`replica queue ${s.queue}: \\d+ ready, 1 consumers, 0 retrying, 0 dead-lettered`))
  })
})
