/**
 * `npm run bench [-- --quick] [--only master-writes,relay,replica,end-to-end,tools,nats] [--dialects postgresql,mysql,sqlite] [--runs N]`
 * (`--quick`: small sizes, on PostgreSQL and MariaDB unless `--dialects` says otherwise)
 *
 * Runs each benchmark at least 3 times against a baseline measured in the same run on the same
 * machine, prints one table on stdout (progress goes to stderr) and writes bench/results.json with
 * the machine, the conditions and every run's raw figures.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { endToEnd } from './end-to-end.js'
import { masterWrites } from './master-writes.js'
import { natsBench } from './nats.js'
import { relay } from './relay.js'
import { replica } from './replica.js'
import { summarize, table, writeResults } from './report.js'
import { amqpConnect, type BenchContext, type Benchmark, type Dialect, type Measurement } from './support.js'
import { benchToolsRunner } from './tools-runner.js'

const ALL: Record<string, Benchmark> = {
  'master-writes': masterWrites,
  relay,
  replica,
  'end-to-end': endToEnd,
  tools: benchToolsRunner,
  // NATS JetStream (NATS_URL, default nats://127.0.0.1:4222) and RabbitMQ quorum vs classic queues.
  nats: natsBench,
}
const DIALECTS: Dialect[] = ['postgresql', 'mysql', 'sqlite']

interface Args {
  quick: boolean
  only: string[]
  dialects: Dialect[]
  runs: number
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, only: Object.keys(ALL), dialects: [], runs: 3 }
  let dialectsGiven = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      const eq = a.indexOf('=')
      if (eq > 0) return a.slice(eq + 1)
      const v = argv[++i]
      if (v === undefined) throw new Error(`${a} needs a value`)
      return v
    }
    if (a === '--quick') args.quick = true
    else if (a.startsWith('--only')) args.only = value().split(',').filter(Boolean)
    else if (a.startsWith('--dialects')) {
      args.dialects = value().split(',').filter(Boolean) as Dialect[]
      dialectsGiven = true
    } else if (a.startsWith('--runs')) args.runs = Number(value())
    else if (a === '--help' || a === '-h') {
      process.stderr.write(`usage: npm run bench -- [--quick] [--only ${Object.keys(ALL).join(',')}] [--dialects ${DIALECTS.join(',')}] [--runs N (>= 3)]\n`)
      process.exit(0)
    } else throw new Error(`unknown argument ${a}; try --help`)
  }
  const unknown = args.only.filter((n) => !(n in ALL))
  if (unknown.length) throw new Error(`--only: unknown benchmark ${unknown.join(', ')}; known: ${Object.keys(ALL).join(', ')}`)
  const bad = args.dialects.filter((d) => !DIALECTS.includes(d))
  if (bad.length) throw new Error(`--dialects: unknown ${bad.join(', ')}; known: ${DIALECTS.join(', ')}`)
  // --quick keeps MariaDB: issue 12 asks for its master-writes and replica rows.
  if (!dialectsGiven) args.dialects = args.quick ? ['postgresql', 'mysql'] : [...DIALECTS]
  if (!Number.isInteger(args.runs) || args.runs < 3) throw new Error('--runs must be an integer >= 3')
  return args
}

async function versions(dialects: Dialect[]) {
  const v: Record<string, string | null> = { postgresql: null, mariadb: null, sqlite: null, rabbitmq: null, erlang: null }
  try {
    const pg = (await import('pg')).default
    const c = new pg.Client({ connectionString: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres' })
    await c.connect()
    v.postgresql = (await c.query('SHOW server_version')).rows[0].server_version
    await c.end()
  } catch {}
  if (dialects.includes('mysql'))
    try {
      const mariadb = (await import('mariadb')).default
      const c = await mariadb.createConnection({ host: '127.0.0.1', user: 'root' })
      v.mariadb = (await c.query('SELECT VERSION() AS v'))[0].v
      await c.end()
    } catch {}
  try {
    const Database = (await import('better-sqlite3')).default
    const d = new Database(':memory:')
    v.sqlite = (d.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v
    d.close()
  } catch {}
  try {
    const conn = await amqpConnect('info')
    const props = (conn as unknown as { connection: { serverProperties: Record<string, string> } }).connection.serverProperties
    v.rabbitmq = props.version
    v.erlang = props.platform
    await conn.close()
  } catch {}
  return v
}

function packageVersion(name: string): string | null {
  try {
    return JSON.parse(readFileSync(fileURLToPath(new URL(`../node_modules/${name}/package.json`, import.meta.url)), 'utf8')).version
  } catch {
    return null
  }
}

/** The commit measured, and the files of src/ that differ from it (others edit src/ while benchmarks run). */
function sourceState() {
  const git = (...a: string[]) => {
    try {
      return execFileSync('git', a, { cwd: fileURLToPath(new URL('..', import.meta.url)), encoding: 'utf8' }).trim()
    } catch {
      return null
    }
  }
  return { commit: git('rev-parse', 'HEAD'), uncommittedInSrc: (git('status', '--porcelain', '--', 'src', 'prisma') ?? '').split('\n').filter(Boolean) }
}

/** Linux pressure stall info: the share of time tasks waited for a CPU (a noisy neighbour shows here). */
function pressure(): string | null {
  try {
    return readFileSync('/proc/pressure/cpu', 'utf8').split('\n')[0]
  } catch {
    return null
  }
}

function machine() {
  const cpus = os.cpus()
  return {
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpuModel: cpus[0]?.model ?? null,
    cpuCount: cpus.length,
    cpuMHz: cpus[0]?.speed ?? null,
    cpus: cpus.map((c) => ({ model: c.model, speed: c.speed })),
    memoryTotalMb: Math.round(os.totalmem() / 2 ** 20),
    memoryFreeMb: Math.round(os.freemem() / 2 ** 20),
    node: process.version,
    prismaClient: packageVersion('@prisma/client'),
    amqplib: packageVersion('amqplib'),
    pg: packageVersion('pg'),
  }
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2))
  const started = new Date()
  const t0 = performance.now()
  const log = (m: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1)}s] ${m}\n`)
  const ctx: BenchContext = { quick: args.quick, runs: args.runs, dialects: args.dialects, log }
  const info = { ...machine(), versions: await versions(args.dialects), source: sourceState(), loadAverageAtStart: os.loadavg(), cpuPressureAtStart: pressure() }
  log(`cqrs-sync bench${args.quick ? ' --quick' : ''}: ${args.only.join(', ')} on ${args.dialects.join(', ')}, ${args.runs} runs each; ${info.cpuCount} x ${info.cpuModel}, ${info.memoryTotalMb} MB, node ${info.node}, commit ${info.source.commit?.slice(0, 7)}${info.source.uncommittedInSrc.length ? ' + uncommitted src' : ''}, load ${info.loadAverageAtStart.map((l) => l.toFixed(1)).join(' ')}, PostgreSQL ${info.versions.postgresql}, RabbitMQ ${info.versions.rabbitmq}`)

  const measurements: Measurement[] = []
  const errors: Array<{ benchmark: string; error: string }> = []
  const timings: Record<string, number> = {}
  for (const name of args.only) {
    const b0 = performance.now()
    log(`${name}: start`)
    try {
      measurements.push(...(await ALL[name](ctx)))
    } catch (e) {
      const err = e as Error
      errors.push({ benchmark: name, error: err.stack ?? String(err) })
      log(`${name}: FAILED: ${err.stack ?? err}`)
    }
    timings[name] = Math.round(performance.now() - b0)
    log(`${name}: done in ${(timings[name] / 1000).toFixed(1)} s`)
  }

  // The mysql dialect runs on whatever server MYSQL_URL names: say MariaDB when it is one.
  const isMariadb = /mariadb/i.test(info.versions.mariadb ?? '')
  for (const m of measurements) if (m.dialect === 'mysql' && isMariadb) m.dialect = 'mariadb'
  const rows = measurements.map(summarize)
  // A benchmark that failed shows in the table too, so nobody reads a short table as a clean run.
  for (const e of errors) rows.push({ ...summarize({ benchmark: e.benchmark, dialect: '-', metric: `FAILED: ${e.error.split('\n')[0].slice(0, 100)}`, unit: '', cqrs: [], baseline: [] }) })
  const tableText = table(rows)
  process.stdout.write(`${tableText}\n`)
  for (const m of measurements) if (m.note) log(`note (${m.benchmark} ${m.dialect} ${m.metric}): ${m.note}`)

  const path = fileURLToPath(new URL('./results.json', import.meta.url))
  writeResults(path, {
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    args,
    startedAt: started.toISOString(),
    durationMs: Math.round(performance.now() - t0),
    benchmarkDurationsMs: timings,
    machine: { ...info, loadAverageAtEnd: os.loadavg(), cpuPressureAtEnd: pressure() },
    summary: rows,
    table: tableText,
    measurements,
    errors,
  })
  log(`wrote ${path} (${((performance.now() - t0) / 1000).toFixed(1)} s in all)`)
  return errors.length ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`)
    process.exit(2)
  },
)

