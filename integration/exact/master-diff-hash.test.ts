/**
 * Issue 9, the value-level diff: `cqrs diff-master --hash | cqrs diff-replica | cqrs diff-sync`, real
 * processes in a shell pipe, finds replica rows edited by hand at the same revision (which the plain
 * diff cannot see), and only those (so a clean row hashes equal on both sides), and repairs them
 * through a real `cqrs consume`. A replica that lacks a hashed key refuses clearly.
 */
import type { ChildProcess } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnCqrs, stop, waitForStderr } from '../support/cli.js'
import { DIALECTS, type Dialect } from '../support/databases.js'
import { stage, until, type Stage } from '../tools/support.js'

const AUTHORS = 60

const dialects = DIALECTS.filter((d): d is Exclude<Dialect, 'sqlite'> => d !== 'sqlite')

describe.each(dialects)('diff-master --hash on %s', { timeout: 180_000 }, (dialect) => {
  let s: Stage
  let consumer: ChildProcess | undefined
  const id = () => `author${s.suffix}`
  const at = (v: string) => (dialect === 'postgresql' ? `'${v}+00'` : `'${v}'`)

  beforeAll(async () => {
    s = await stage(dialect)
    const master = await s.master.client()
    await master.author.createMany({
      data: Array.from({ length: AUTHORS }, (_, i) => ({
        id: i + 1,
        name: `Author ${i + 1} ünïcode "q"`,
        birthDate: i % 3 ? new Date(Date.UTC(1950, 0, 1 + i)) : null,
        rating: i,
        balance: `${i}.${String(i % 10).padStart(2, '0')}`,
        lastSeen: i % 4 ? new Date(Date.UTC(2026, 10, 23, 3, 36, 52, i)) : null,
        isActive: i % 2 === 0,
        ...(i % 5 ? { profile: { tags: ['a', `t${i}`], score: i / 2, nested: { k: i } } } : {}),
        nickname: i % 6 ? `nick-${i}` : null,
        externalId: `ext-${i}`,
        cqrsRevision: 1 + (i % 3),
      })),
    })
    const loaded = await s.sh(`cqrs bulk-dump --cqrs-id ${id()} | cqrs bulk-load -i -`)
    expect(loaded.code, loaded.stderr).toBe(0)
  })
  afterAll(async () => {
    if (consumer) await stop(consumer)
    await s?.drop()
  })

  it('finds rows edited by hand at the same revision, and diff-sync repairs them', async () => {
    await s.replica.exec(`UPDATE author_ref SET name = 'edited by hand' WHERE id = 3`)
    await s.replica.exec(`UPDATE author_ref SET balance = balance + 0.01 WHERE id = 7`)
    await s.replica.exec(`UPDATE author_ref SET profile = '{"tags": ["edited"]}' WHERE id = 12`)
    // One microsecond off: a value a millisecond Date could not tell apart.
    await s.replica.exec(`UPDATE author_ref SET last_seen = ${at('2026-11-23 03:36:52.013001')} WHERE id = 14`)

    const plainDiff = await s.sh(`cqrs diff-master --cqrs-id ${id()} | cqrs diff-replica`)
    expect(plainDiff.code, 'the revision-only diff cannot see them').toBe(0)

    const listed = await s.sh(`cqrs diff-master --cqrs-id ${id()} --hash --batch 16`)
    expect(listed.code, listed.stderr).toBe(0)
    const [header, spec, first] = listed.stdout.split('\n')
    expect(header).toMatch(new RegExp(`^${id()},`))
    expect(JSON.parse(spec).keys.map((k: [string, string]) => k[0])).toEqual(['id', 'name', 'birthDate', 'rating', 'balance', 'lastSeen', 'isActive', 'profile', 'nickname', 'externalId'])
    expect(JSON.parse(first)[0]).toEqual([1, 1, expect.stringMatching(/^[0-9a-f]{16}$/)])
    const drift = await s.sh(`cqrs diff-replica`, listed.stdout)
    expect(drift.code).toBe(1)
    expect(drift.stderr).toMatch(/4 drifted \(0 missing, 0 at another revision, 4 with other values\)/)
    expect(drift.stdout.trim().split('\n').slice(1).flatMap((l) => JSON.parse(l))).toEqual([3, 7, 12, 14])

    consumer = spawnCqrs(['consume'], s.env)
    await waitForStderr(consumer, /ready/)
    const repaired = await s.sh(`cqrs diff-master --cqrs-id ${id()} --hash | cqrs diff-replica | cqrs diff-sync`)
    expect(repaired.stderr).toMatch(new RegExp(`sent 4 SYNC messages of ${id()}`))
    expect(repaired.code).toBe(0)
    await until(async () => (await s.sh(`cqrs diff-master --cqrs-id ${id()} --hash | cqrs diff-replica`)).code === 0, 'the replica to hash equal to the master again')
  })

  it('a replica that lacks a hashed key refuses, naming the keys to hash', async () => {
    const spec = JSON.stringify({ hash: 'sha256-16', keys: [['name', 'String'], ['favourite_colour', 'String']] })
    const r = await s.sh(`cqrs diff-replica`, `${id()},2026-11-23 03:39:06.098044+00:00\n${spec}\n[[1,1,"0123456789abcdef"]]\n`)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/'favourite_colour', which this replica does not store .* --hash-keys name /)
  })
})
