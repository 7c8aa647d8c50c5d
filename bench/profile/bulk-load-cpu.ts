/**
 * bulk-load's CPU, A/B: `tsx bench/profile/bulk-load-cpu.ts --rows 1000000 --runs 3 [root ...]`.
 * Seeds `rows` authors on PostgreSQL, dumps them once, then loads the dump into an empty replica table
 * with each root's built `cqrs` (default: this checkout; give other worktrees, each `npm run build`;
 * `dir,NAME=value` runs a root with a setting of its own),
 * the roots alternated run by run. Per run: wall seconds, the `cqrs` process's CPU seconds (its own
 * resource usage), and the CPU seconds of the replica database's backends (read from /proc while the
 * load runs: on a shared machine wall times move with the load, CPU seconds much less).
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { createTestDatabase } from '../../integration/support/databases.js'
import { seed } from '../tools.js'

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}
const rows = arg('--rows', 1_000_000)
const runs = arg('--runs', 3)
const roots = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'))
if (!roots.length) roots.push('.')
const TICK = 100 // clock ticks per second (USER_HZ)
const USAGE_HOOK = `data:text/javascript,process.on('exit',()=>{const u=process.resourceUsage();process.stderr.write('\\nusage='+(u.userCPUTime+u.systemCPUTime)+','+u.maxRSS+'\\n')})`

/** utime + stime of a process, in clock ticks; undefined once it is gone. */
function ticksOf(pid: number): number | undefined {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ')
    return Number(rest[11]) + Number(rest[12])
  } catch {
    return undefined
  }
}

/** A root as given: `dir` or `dir,NAME=value,...` (settings for its runs alone, e.g. CQRS_TOOLS_BATCH). */
function rootOf(spec: string): { dir: string; env: Record<string, string> } {
  const [dir, ...settings] = spec.split(',')
  return { dir, env: Object.fromEntries(settings.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])) }
}

async function loadOnce(spec: string, dump: string, env: Record<string, string>, db: string, admin: pg.Client) {
  const { dir: root, env: own } = rootOf(spec)
  const ticks = new Map<number, number>()
  const sample = async () => {
    const r = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [db])
    for (const { pid } of r.rows) {
      const t = ticksOf(pid)
      if (t !== undefined) ticks.set(pid, t)
    }
  }
  const load = loadavg()[0]
  const t0 = performance.now()
  const child = spawn(process.execPath, ['--import', USAGE_HOOK, join(root, 'dist/cli/main.js'), 'bulk-load', '-i', dump], { env: { ...process.env, CQRS_CONFIG: join(root, 'integration/support/test-config.ts'), ...env, ...own }, cwd: root, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const done = new Promise<number | null>((res) => child.on('close', res))
  let finished = false
  void done.then(() => (finished = true))
  while (!finished) {
    await sample()
    await new Promise((r) => setTimeout(r, 100))
  }
  const code = await done
  const wall = (performance.now() - t0) / 1000
  if (code !== 0) throw new Error(`bulk-load exited ${code}: ${stderr}`)
  if (process.env.SHOW_STDERR) process.stderr.write(stderr)
  const [cpuUs, rssKb] = /usage=(\d+),(\d+)/.exec(stderr)!.slice(1).map(Number)
  const pgCpu = [...ticks.values()].reduce((a, b) => a + b, 0) / TICK
  return { wall, node: cpuUs / 1e6, pg: pgCpu, rssMb: rssKb / 1024, load }
}

const [master, replica] = await Promise.all([createTestDatabase('postgresql', 'blcm'), createTestDatabase('postgresql', 'blcr')])
const dir = mkdtempSync(join(tmpdir(), 'cqrs-bulk-load-cpu-'))
const admin = new pg.Client({ connectionString: replica.url })
try {
  await seed(master, rows)
  await admin.connect()
  const db = (await admin.query<{ d: string }>('SELECT current_database() AS d')).rows[0].d
  const env = { CQRS_TEST_DIALECT: 'postgresql', CQRS_MASTER_URL: master.url, CQRS_REPLICA_URL: replica.url, CQRS_AUTHOR_KEYS: 'column', CQRS_QUEUE: 'bench_tools_unused', CQRS_ID_SUFFIX: '' }
  const dump = join(dir, 'author.dump')
  const first = rootOf(roots[0]).dir
  const d = spawn(process.execPath, [join(first, 'dist/cli/main.js'), 'bulk-dump', '--cqrs-id', 'author', '-o', dump], { env: { ...process.env, CQRS_CONFIG: join(first, 'integration/support/test-config.ts'), ...env }, stdio: 'inherit' })
  await new Promise((res) => d.on('close', res))
  console.log(`${rows} rows; per 1M rows: wall s, node CPU s, postgres CPU s; load average at the start`)
  for (let r = 0; r < runs; r++)
    for (const root of roots) {
      await replica.exec('TRUNCATE author_ref')
      await replica.exec('CHECKPOINT').catch(() => {}) // needs superuser; a checkpoint mid-run moves the figures
      const m = await loadOnce(root, dump, env, db, admin)
      const per = 1e6 / rows
      console.log(`${root} run ${r + 1}: ${(rows / m.wall).toFixed(0)} rows/s, wall ${(m.wall * per).toFixed(2)} s, node ${(m.node * per).toFixed(2)} s, pg ${(m.pg * per).toFixed(2)} s, rss ${m.rssMb.toFixed(0)} MB, load ${m.load.toFixed(2)}`)
    }
} finally {
  await admin.end().catch(() => {})
  rmSync(dir, { recursive: true, force: true })
  await Promise.allSettled([master.drop(), replica.drop()])
}
