/**
 * Each stage reads what django-cqrs wrote (test/fixtures/django-cqrs): the dump loads, the diff outputs drive
 * our next stage, and where our output is the next django file it is the same bytes. Plus the errors
 * a script meets: a missing file, a wrong cqrs_id, malformed lines (named, the rest still processed),
 * bad usage.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseJson, stringifyJson } from '../../src/core/json.js'
import { DIALECTS } from '../support/databases.js'
import { fixtureText, PROTOCOL_DIR } from '../support/fixtures.js'
import { collectQueue, plain, stage, type Stage } from './support.js'

const dumpRows = () =>
  fixtureText('author.dump')
    .split('\n')
    .slice(1)
    .map((l) => parseJson(l) as Record<string, any>)

/** The django-cqrs rows of author.dump as master rows. */
const masterRow = (r: Record<string, any>) => ({
  id: r.id,
  name: r.name,
  birthDate: r.birth_date ? new Date(`${r.birth_date}T00:00:00Z`) : null,
  rating: r.rating,
  balance: stringifyJson(r.balance),
  lastSeen: r.last_seen ? new Date(r.last_seen.replace(' ', 'T')) : null,
  isActive: r.is_active,
  ...(r.profile ? { profile: r.profile } : {}),
  nickname: r.nickname,
  externalId: r.external_id,
  cqrsRevision: r.cqrs_revision,
  cqrsUpdated: new Date(r.cqrs_updated.replace(' ', 'T')),
})

describe.each(DIALECTS.filter((d) => d !== 'sqlite'))('django-cqrs outputs through our stages on %s', { timeout: 240_000 }, (dialect) => {
  let s: Stage
  let masterDb: any
  let replicaDb: any
  const file = (name: string) => join(PROTOCOL_DIR, name)

  beforeAll(async () => {
    // The fixtures name cqrs_id 'author' and queue 'replica'; nothing here consumes or binds those on
    // the shared broker (diff-sync is sent to a queue of the test's own with --queue).
    s = await stage(dialect, '')
    Object.assign(s.env, { CQRS_QUEUE: 'replica', CQRS_AUTHOR_KEYS: 'column' })
    masterDb = await s.master.client()
    replicaDb = await s.replica.client()
    await masterDb.author.createMany({ data: dumpRows().map(masterRow) })
  })
  afterAll(async () => s?.drop())

  it('bulk-load reads author.dump into AuthorRef', async () => {
    const r = await s.sh(`cqrs bulk-load -i ${file('author.dump')}`)
    expect(r.stderr).toMatch(/loaded 7 rows of author into author_ref: 7 applied, 0 skipped \(replica as new or newer\), 0 failed/)
    expect(r.code).toBe(0)
    const row = plain(await replicaDb.authorRef.findUnique({ where: { id: 5 } }))
    expect(row).toMatchObject({ name: 'Bulk 1', birthDate: '1951-02-02T00:00:00.000Z', rating: 1, balance: '1.01', lastSeen: '2026-11-23T03:36:33.620Z', isActive: false, profile: { tags: ['peer', 'x1'], score: 1.5, nested: { k: 1 } }, nickname: null, cqrsRevision: 0 })
    // Our dump of the master (seeded from the same rows) has the django keys, and loads the same way.
    const ours = await s.sh(`cqrs bulk-dump --cqrs-id author`)
    const lines = ours.stdout.trim().split('\n')
    expect(lines[0]).toBe('author')
    expect(Object.keys(JSON.parse(lines[1])).sort()).toEqual(Object.keys(dumpRows()[0]).sort())
  })

  it('diff-replica reads diff-master.out; its output matches diff-replica.out', async () => {
    const same = await s.sh(`cqrs diff-replica -i ${file('diff-master.out')}`)
    expect(same.code).toBe(0)
    expect(same.stdout).toBe('author,2026-11-23 03:39:06.098044+00:00,replica\n')
    // The drift django-cqrs saw: 8 missing, 1 and 2 at another revision.
    await s.replica.exec(`DELETE FROM author_ref WHERE id = 8`)
    await s.replica.exec(`UPDATE author_ref SET cqrs_revision = 1 WHERE id IN (1, 2)`)
    const r = await s.sh(`cqrs diff-replica`, fixtureText('diff-master.out'))
    expect(r.code).toBe(1)
    const [header, batch, ...rest] = r.stdout.split('\n')
    const [theirHeader, theirBatch] = fixtureText('diff-replica.out').split('\n')
    expect(header).toBe(theirHeader)
    expect(new Set(JSON.parse(batch))).toEqual(new Set(JSON.parse(theirBatch)))
    expect(rest).toEqual([''])
  })

  it('diff-sync reads diff-replica.out and sends the rows as SYNC to cqrs.<queue>.author', async () => {
    const queue = `fixture_${s.queue}`
    const inbox = await collectQueue(`cqrs.${queue}.author`)
    try {
      const r = await s.sh(`cqrs diff-sync -i ${file('diff-replica.out')} --queue ${queue}`)
      expect(r.stderr).toMatch(new RegExp(`sent 3 SYNC messages of author to queue ${queue} \\(routing key cqrs\\.${queue}\\.author\\); 0 pks no longer on the master skipped`))
      expect(r.code).toBe(0)
      const got = await inbox.take(3)
      const theirs = JSON.parse(JSON.parse(fixtureText('sync-to-queue.json')).body)
      const bodies = got.map((m) => parseJson(m.body) as any).sort((a, b) => a.instance_pk - b.instance_pk)
      expect(bodies.map((b) => b.instance_pk)).toEqual([1, 2, 8])
      for (const b of bodies) {
        expect(Object.keys(b)).toEqual(Object.keys(theirs))
        expect(Object.keys(b.instance_data).sort()).toEqual(Object.keys(theirs.instance_data).sort())
        expect(b).toMatchObject({ signal_type: 'SYNC', cqrs_id: 'author', retries: 0 })
        const row = dumpRows().find((d) => d.id === b.instance_pk)!
        // A decimal's digits depend on the master column's scale (ours 18,2; Django's own), not its value.
        const num = (v: unknown) => (v == null ? v : Number(stringifyJson(v)))
        expect({ ...b.instance_data, balance: num(b.instance_data.balance) }).toMatchObject({ name: row.name, birth_date: row.birth_date, rating: row.rating, balance: num(row.balance), profile: row.profile, cqrs_revision: row.cqrs_revision })
      }
      expect(got.every((m) => m.routingKey === `cqrs.${queue}.author`)).toBe(true)
    } finally {
      await inbox.close()
    }
  })

  it('deleted-diff-master reads deleted-diff-replica.out and writes deleted-diff-master.out', async () => {
    const r = await s.sh(`cqrs deleted-diff-master -i ${file('deleted-diff-replica.out')}`)
    expect(r.stdout).toBe(fixtureText('deleted-diff-master.out'))
    expect(r.code).toBe(1)
  })

  it('deleted-sync-replica reads deleted-diff-master.out and deletes the row, keeping a tombstone', async () => {
    await s.replica.exec(`INSERT INTO author_ref (id, name, external_id, cqrs_revision, cqrs_updated) VALUES (999, 'gone on the master', 'x', 4, '2026-11-23 03:00:00')`)
    const r = await s.sh(`cqrs deleted-sync-replica -i ${file('deleted-diff-master.out')}`)
    expect(r.stderr).toMatch(/deleted 1 rows of author from author_ref \(0 already gone, 0 kept/)
    expect(r.code).toBe(0)
    expect(await replicaDb.authorRef.findUnique({ where: { id: 999 } })).toBeNull()
    const tombs = await s.replica.query<{ revision: number }>(`SELECT revision FROM cqrs_tombstone WHERE cqrs_id = 'author' AND pk = '999'`)
    expect(tombs.map((t) => Number(t.revision))).toEqual([4])
    // deleted-diff-replica writes the format django-cqrs reads.
    const listed = await s.sh(`cqrs deleted-diff-replica --cqrs-id author --batch 3`)
    const [header, ...batches] = listed.stdout.trim().split('\n')
    expect(header).toMatch(/^author,\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?\+00:00$/)
    expect(batches.map((b) => JSON.parse(b))).toEqual([[1, 2, 4], [5, 6, 7]])
  })

  it('names a missing file, a wrong cqrs_id, and bad usage', async () => {
    const missing = await s.sh(`cqrs bulk-load -i /nonexistent/author.dump`)
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/cqrs bulk-load: Cannot read \/nonexistent\/author\.dump: no such file/)
    const wrong = await s.sh(`cqrs bulk-dump --cqrs-id autor`)
    expect(wrong.code).toBe(2)
    expect(wrong.stderr).toMatch(/Unknown cqrs_id 'autor'.*Did you mean 'author'\?/)
    const wrongLoad = await s.sh(`cqrs bulk-load -i -`, 'autor\n{"id":1}\n')
    expect(wrongLoad.code).toBe(2)
    expect(wrongLoad.stderr).toMatch(/Unknown cqrs_id 'autor': the replica handlers/)
    const empty = await s.sh(`cqrs diff-replica`, '')
    expect(empty.code).toBe(2)
    expect(empty.stderr).toMatch(/stdin is empty: expected diff-master's output/)
    const usage = await s.sh(`cqrs diff-master --cqrs-id author --bogus`)
    expect(usage.code).toBe(64)
    const help = await s.sh(`cqrs diff-replica --help`)
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/Examples:\n {2}cqrs diff-master --cqrs-id author \| cqrs diff-replica \| cqrs diff-sync/)
    expect(help.stdout).toMatch(/1 drift found/)
  })

  it('a malformed line is named and the rest is still processed', async () => {
    const good = (id: number) => JSON.stringify({ id, name: `n${id}`, external_id: 'e', cqrs_revision: 9, cqrs_updated: '2026-11-23 03:37:33.633319+00:00' })
    const dump = ['author', good(501), '{"id": 502,', JSON.stringify({ id: 503, name: 'x', external_id: 'e', rating: 'high', cqrs_revision: 0 }), '', JSON.stringify({ name: 'no pk' }), good(504)].join('\n')
    const r = await s.sh(`cqrs bulk-load -i - --batch 2`, dump)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/cqrs bulk-load: line 3: not valid JSON/)
    expect(r.stderr).toMatch(/cqrs bulk-load: line 4: field 'rating' must be an integer/)
    expect(r.stderr).toMatch(/cqrs bulk-load: line 6: the row has no primary key/)
    expect(r.stderr).toMatch(/loaded 5 rows of author into author_ref: 2 applied, 0 skipped \(replica as new or newer\), 3 failed/)
    expect(await replicaDb.authorRef.count({ where: { id: { in: [501, 504] } } })).toBe(2)

    const diff = await s.sh(`cqrs diff-replica`, ['author,2026-11-23 03:39:06+00:00', '[[501,9]]', '[[1,2],oops]', '[["x",1]]', '[[9001,0]]'].join('\n'))
    expect(diff.code).toBe(2)
    expect(diff.stderr).toMatch(/line 3: not valid JSON/)
    expect(diff.stderr).toMatch(/line 4: field 'id' must be an integer/)
    expect(diff.stdout.split('\n')[1]).toBe('[9001]')
  })
})
