/**
 * Where bulk-dump and bulk-load spend their time: `tsx bench/profile/tools.ts [rows]`.
 * Seeds `rows` authors on PostgreSQL, then runs `cqrs bulk-dump` and `cqrs bulk-load` (the real CLI,
 * as bench/tools.ts does) under `node --cpu-prof`, and summarizes each profile. The profile covers
 * the whole process, start-up (jiti loading the TypeScript test config) included; `npm run build` first.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BIN, TEST_CONFIG } from '../../integration/support/cli.js'
import { createTestDatabase } from '../support.js'
import { PROFILE_DIR } from './cpu.js'

const rows = Number(process.argv[2] ?? 200_000)
const [master, replica] = await Promise.all([createTestDatabase('postgresql', 'prof'), createTestDatabase('postgresql', 'prof')])
const dir = mkdtempSync(join(tmpdir(), 'cqrs-prof-tools-'))
try {
  await master.exec(`INSERT INTO author (id, name, birth_date, rating, balance, last_seen, is_active, profile, nickname, external_id, cqrs_revision, cqrs_updated)
    SELECT g, 'Author ' || g, DATE '1950-01-01' + (g % 20000), g % 1000, (g % 100000) / 100.0, now() - (g || ' seconds')::interval, g % 2 = 0,
      jsonb_build_object('tags', jsonb_build_array('a', 'b'), 'score', g % 7), 'nick-' || g, md5(g::text), g % 4, now()
    FROM generate_series(1, ${rows}) g`)
  const env = { ...process.env, CQRS_CONFIG: TEST_CONFIG, CQRS_TEST_DIALECT: 'postgresql', CQRS_MASTER_URL: master.url, CQRS_REPLICA_URL: replica.url, CQRS_AUTHOR_KEYS: 'column', CQRS_QUEUE: 'bench_tools_unused', CQRS_ID_SUFFIX: '' }
  const dump = join(dir, 'author.dump')
  for (const [name, args] of [['bulk-dump', ['bulk-dump', '--cqrs-id', 'author', '-o', dump]], ['bulk-load', ['bulk-load', '-i', dump]]] as const) {
    const profDir = join(PROFILE_DIR, `tools-${name}`)
    rmSync(profDir, { recursive: true, force: true })
    const t0 = performance.now()
    const r = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', profDir, BIN, ...args], { env, encoding: 'utf8' })
    const s = (performance.now() - t0) / 1000
    if (r.status !== 0) throw new Error(`${name} failed: ${r.stderr}`)
    console.log(`${name}: ${rows} rows in ${s.toFixed(1)} s = ${(rows / s).toFixed(0)} rows/s (whole command)`)
    // The first profile is the main thread's (a loader thread, if any, writes a second one).
    const file = join(profDir, readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')).sort()[0])
    console.log(execFileSync(process.execPath, ['--import', 'tsx', 'bench/profile/summarize.ts', file, '15'], { encoding: 'utf8' }))
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
  await Promise.allSettled([master.drop(), replica.drop()])
}
