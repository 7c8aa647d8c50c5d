/**
 * The tools stream: each stage runs over a table far larger than the V8 heap it is given. 300,000
 * author rows are about 55 MB of dump text and several times that as JS objects; every stage runs
 * with its old space capped at 48 MB, so a stage that held the table (or its output) in memory would
 * die of it here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DIALECTS } from '../support/databases.js'
import { stage, type Stage } from './support.js'

const ROWS = 300_000

describe.runIf(DIALECTS.includes('postgresql'))('tools in constant memory on PostgreSQL', { timeout: 240_000 }, () => {
  let s: Stage
  const id = () => `author${s.suffix}`

  beforeAll(async () => {
    s = await stage('postgresql')
    Object.assign(s.env, { CQRS_AUTHOR_KEYS: 'column', NODE_OPTIONS: '--max-old-space-size=48' })
    await s.master.exec(`INSERT INTO author (id, name, birth_date, rating, balance, last_seen, is_active, profile, nickname, external_id, cqrs_revision, cqrs_updated)
      SELECT g, 'Author ' || g, DATE '1950-01-01' + (g % 20000), g % 1000, (g % 100000) / 100.0, now() - (g || ' seconds')::interval, g % 2 = 0,
        jsonb_build_object('tags', jsonb_build_array('a', 'b'), 'score', g % 7), 'nick-' || g, md5(g::text), g % 4, now()
      FROM generate_series(1, ${ROWS}) g`)
  })
  afterAll(async () => s?.drop())

  it(`dump | load and diff-master | diff-replica go through ${ROWS.toLocaleString('en-US')} rows under a 48 MB heap`, async () => {
    const load = await s.sh(`cqrs bulk-dump --cqrs-id ${id()} | cqrs bulk-load -i -`)
    expect(load.stderr).toMatch(new RegExp(`loaded ${ROWS} rows of ${id()} into author_ref: ${ROWS} applied, 0 skipped`))
    expect(load.code).toBe(0)
    const diff = await s.sh(`cqrs diff-master --cqrs-id ${id()} | cqrs diff-replica`)
    expect(diff.stderr).toMatch(new RegExp(`checked ${ROWS} rows of ${id()}: no drift`))
    expect(diff.code).toBe(0)
  })
})
