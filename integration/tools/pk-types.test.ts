/**
 * Any primary key type and name end to end: a uuid-keyed model (Tag), a string-keyed one (Setting, pk
 * `key`, values with commas, quotes and non-ASCII) and a bigint-keyed one (Ledger, ids beyond 2^53 kept
 * exact) through dump | load, and a drifted replica repaired by both pipelines with `cqrs consume`.
 */
import type { ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnCqrs, stop, waitForStderr } from '../support/cli.js'
import { DIALECTS } from '../support/databases.js'
import { plain, stage, until, type Stage } from './support.js'

const BIG = 9007199254740993n // 2^53 + 1: a JS number cannot hold it

describe.each(DIALECTS.filter((d) => d !== 'sqlite'))('uuid, string and bigint keys on %s', { timeout: 240_000 }, (dialect) => {
  let s: Stage
  let masterDb: any
  let replicaDb: any
  let consumer: ChildProcess | undefined
  const tags = Array.from({ length: 40 }, (_, i) => ({ id: randomUUID(), name: `tag ${i}`, cqrsRevision: 1 }))
  const settings = ['a', 'b,c', 'with "quote"', 'ключ', 'z', ...Array.from({ length: 30 }, (_, i) => `k${String(i).padStart(3, '0')}`)].map((key, i) => ({ key, value: `v${i}`, cqrsRevision: 2 }))
  const ledgers = [1n, 2n, BIG, BIG + 2n, 2n ** 62n].map((id, i) => ({ id, amount: BIG * BigInt(i + 1), note: i % 2 ? null : `n${i}`, cqrsRevision: 1 }))

  const compare = async () => {
    const pairs: Array<[string, string, string]> = [
      ['tag', 'tagRef', 'id'],
      ['setting', 'settingRef', 'key'],
      ['ledger', 'ledgerRef', 'id'],
    ]
    for (const [m, r, pk] of pairs) {
      const master = (await masterDb[m].findMany({ orderBy: { [pk]: 'asc' } })).map(plain)
      const replica = (await replicaDb[r].findMany({ orderBy: { [pk]: 'asc' } })).map(plain)
      expect(replica, `${r} equals ${m}`).toEqual(master)
    }
  }

  beforeAll(async () => {
    s = await stage(dialect)
    masterDb = await s.master.client()
    replicaDb = await s.replica.client()
    await masterDb.tag.createMany({ data: tags })
    await masterDb.setting.createMany({ data: settings })
    await masterDb.ledger.createMany({ data: ledgers })
  })
  afterAll(async () => {
    if (consumer) await stop(consumer)
    await s?.drop()
  })

  it('dump | load reproduces each table, big ids exact', async () => {
    for (const m of ['tag', 'setting', 'ledger']) {
      const r = await s.sh(`cqrs bulk-dump --cqrs-id ${m}${s.suffix} --batch 7 | cqrs bulk-load -i - --batch 9`)
      expect(r.code, r.stderr).toBe(0)
    }
    const dump = await s.sh(`cqrs bulk-dump --cqrs-id ledger${s.suffix}`)
    expect(dump.stdout).toContain(`"id":${BIG},"amount":${BIG * 3n}`)
    await compare()
  })

  it('a drifted replica is repaired by both pipelines', async () => {
    const q = (n: string) => (dialect === 'mysql' ? `\`${n}\`` : `"${n}"`)
    await s.replica.exec(`DELETE FROM tag_ref WHERE id IN ('${tags[0].id}', '${tags[1].id}')`)
    await s.replica.exec(`UPDATE tag_ref SET name = 'stale', cqrs_revision = 0 WHERE id = '${tags[2].id}'`)
    await s.replica.exec(`INSERT INTO tag_ref (id, name, cqrs_revision, cqrs_updated) VALUES ('${randomUUID()}', 'extra', 0, '2026-11-23 03:00:00')`)
    await s.replica.exec(`DELETE FROM setting_ref WHERE ${q('key')} = 'b,c'`)
    await s.replica.exec(`UPDATE setting_ref SET value = 'stale', cqrs_revision = 1 WHERE ${q('key')} = 'ключ'`)
    await s.replica.exec(`INSERT INTO setting_ref (${q('key')}, value, cqrs_revision, cqrs_updated) VALUES ('extra, "one"', 'x', 0, '2026-11-23 03:00:00')`)
    await s.replica.exec(`DELETE FROM ledger_ref WHERE id = ${BIG}`)
    await s.replica.exec(`UPDATE ledger_ref SET amount = 0, cqrs_revision = 0 WHERE id = ${BIG + 2n}`)
    await s.replica.exec(`INSERT INTO ledger_ref (id, amount, cqrs_revision, cqrs_updated) VALUES (${BIG + 4n}, 1, 0, '2026-11-23 03:00:00')`)

    consumer = spawnCqrs(['consume'], s.env)
    await waitForStderr(consumer, /ready/)
    for (const m of ['tag', 'setting', 'ledger']) {
      const id = `${m}${s.suffix}`
      const sync = await s.sh(`cqrs diff-master --cqrs-id ${id} --batch 8 | cqrs diff-replica | cqrs diff-sync`)
      expect(sync.stderr).toMatch(new RegExp(`sent ${m === 'tag' ? 3 : 2} SYNC messages of ${id}`))
      expect(sync.code, sync.stderr).toBe(0)
      const del = await s.sh(`cqrs deleted-diff-replica --cqrs-id ${id} --batch 8 | cqrs deleted-diff-master | cqrs deleted-sync-replica`)
      expect(del.stderr).toMatch(new RegExp(`deleted 1 rows of ${id}`))
      expect(del.code, del.stderr).toBe(0)
    }
    await until(async () => {
      const [t, st, l] = await Promise.all([
        replicaDb.tagRef.count({ where: { name: { not: 'stale' } } }),
        replicaDb.settingRef.count({ where: { value: { not: 'stale' } } }),
        replicaDb.ledgerRef.count({ where: { amount: { not: 0 } } }),
      ])
      return t === tags.length && st === settings.length && l === ledgers.length
    }, 'the SYNCs to be applied')
    await compare()
    for (const m of ['tag', 'setting', 'ledger']) {
      const clean = await s.sh(`cqrs diff-master --cqrs-id ${m}${s.suffix} | cqrs diff-replica`)
      expect(clean.code, clean.stderr).toBe(0)
    }
  })
})
