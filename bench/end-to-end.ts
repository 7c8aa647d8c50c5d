/**
 * End to end, master commit -> replica commit, on PostgreSQL (two databases, one broker).
 *
 * Saturation: N author SAVE events sit in the master's outbox; the master's in-process relay
 * (`prisma.$cqrs.flush()`) publishes them and `cqrs consume -w 1` (its own process) applies them;
 * timed until the replica table holds all N rows. Baseline: the same flow with plain drivers: a
 * relay loop in pg (claim 1000 rows FOR UPDATE, publish with confirms, delete, commit) and a raw
 * consumer process (amqplib prefetch 1000 + one unnest upsert per batch).
 *
 * Lag: creates on the master at a steady 1k/s (open loop, up to 16 in flight) for ~10 s through the
 * default setup (trigger capture, installed as a migration would) with its in-process relay, applied by the same `cqrs consume -w 1`. Lag per row is the
 * replica's commit minus the master's commit, both taken from NOTIFYs that AFTER triggers send on
 * each side (a NOTIFY is delivered when its transaction commits), received by this process.
 * Baseline: INSERT with pg, then publish the event with a confirm (no outbox), raw consumer.
 * Each lag run also logs the CPU per write of every process taking part (from /proc) and the
 * in-process relay's cycle (bench/relay-timing.ts), to tell load from latency.
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import pg from 'pg'
import { cqrsMaster, installCaptureTriggers, outboxNotifyStatements, rabbitmq, silentLogger } from './package.js'
import { ROOT } from '../integration/support/databases.js'
import { authorBodies, fillOutbox } from './relay.js'
import { processCpu, type ProcessCpu, serviceOf } from './profile/cpu.js'
import { timeRelay } from './relay-timing.js'
import { percentile, rate } from './stats.js'
import {
  AMQP_URL,
  RELAY_GATHER_MS,
  amqpConnect,
  authorData,
  authorEventBody,
  type BenchContext,
  type CliWorkers,
  countRows,
  createTestDatabase,
  deleteQueues,
  EXCHANGE,
  type Measurement,
  messageCount,
  notifyTrigger,
  publishRaw,
  replicaQueues,
  steady,
  startCli,
  startConsume,
  startRawConsumer,
  uniqueSuffix,
  until,
} from './support.js'

const REVISION = 2

/** bench/lag-listener.ts in its own process: commit stamps from NOTIFYs, lags on request. */
async function startLagListener(masterUrl: string, replicaUrl: string, tapKeys: string[]) {
  const child = fork(join(ROOT, 'bench/lag-listener.ts'), [], { cwd: ROOT, execArgv: ['--import', 'tsx'], env: { ...process.env, LAG_MASTER_URL: masterUrl, LAG_REPLICA_URL: replicaUrl, LAG_TAP_KEYS: tapKeys.join(',') }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  const request = <T>(msg: object | null, reply: string) =>
    new Promise<T>((resolve, reject) => {
      const onMessage = (m: { type: string }) => {
        if (m.type !== reply) return
        child.off('message', onMessage)
        child.off('exit', onExit)
        resolve(m as T)
      }
      const onExit = (code: number | null) => reject(new Error(`lag listener exited (${code})`))
      child.on('message', onMessage)
      child.once('exit', onExit)
      if (msg) child.send(msg)
    })
  await request(null, 'ready')
  return {
    wait: (ids: number[], timeoutMs: number) => request<{ lags: number[]; toBroker: number[]; toReplica: number[]; missing: number }>({ type: 'wait', ids, timeoutMs }, 'lags'),
    reset: () => request({ type: 'reset' }, 'reset'),
    close: async () => {
      if (child.exitCode !== null) return
      const exited = once(child, 'exit')
      child.send({ type: 'exit' })
      await exited
    },
  }
}

export async function endToEnd(ctx: BenchContext): Promise<Measurement[]> {
  if (!ctx.dialects.includes('postgresql')) {
    ctx.log('  end-to-end: runs on PostgreSQL only (lag is read from NOTIFYs); skipped')
    return []
  }
  const N = ctx.quick ? 1500 : 20_000
  const LAG_MS = ctx.quick ? 800 : 10_000
  // The issue's rate; BENCH_LAG_RATE sets another, to see where lag starts to come from saturation.
  const PER_SEC = Number(process.env.BENCH_LAG_RATE ?? 1000)
  // BENCH_LAG_ONLY=1: the lag part alone, default setup against raw and plain Prisma (to iterate on lag).
  const LAG_ONLY = process.env.BENCH_LAG_ONLY === '1'
  const [master, replicaDb] = await Promise.all([createTestDatabase('postgresql', 'bem'), createTestDatabase('postgresql', 'ber')])
  const suffix = uniqueSuffix()
  const cqrsId = `author_${suffix}`
  const rawKey = `author_${suffix}_raw`
  const qCqrs = `bench_e2e_${suffix}_cqrs`
  const qRaw = `bench_e2e_${suffix}_raw`
  const conn = await amqpConnect('e2e')
  const closers: Array<() => Promise<unknown>> = []
  let cli: Awaited<ReturnType<typeof startConsume>> | undefined
  let raw: CliWorkers | undefined
  try {
    ctx.log('  end-to-end: starting cqrs consume -w 1 and the raw consumer')
    const started = await Promise.allSettled([
      startConsume(1, { CQRS_TEST_DIALECT: 'postgresql', CQRS_REPLICA_URL: replicaDb.url, CQRS_QUEUE: qCqrs, CQRS_ID_SUFFIX: `_${suffix}`, AMQP_URL }),
      startRawConsumer({ RAW_DIALECT: 'postgresql', RAW_DB_URL: replicaDb.url, RAW_QUEUE: qRaw, RAW_KEYS: rawKey, RAW_PREFETCH: '1000' }),
    ])
    if (started[0].status === 'fulfilled') cli = started[0].value
    if (started[1].status === 'fulfilled') raw = started[1].value
    for (const r of started) if (r.status === 'rejected') throw r.reason

    // ---- saturation from a full outbox ------------------------------------------------------------
    const base = await master.client({ poolSize: 16 })
    const sat = base.$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), relay: { enabled: false }, logger: silentLogger, models: { author: { cqrsId } } }))
    closers.push(() => sat.$cqrs.close())
    const relayPg = new pg.Client({ connectionString: master.url })
    await relayPg.connect()
    closers.push(() => relayPg.end())
    const confirm = await conn.createConfirmChannel()

    const rawRelay = async () => {
      for (;;) {
        await relayPg.query('BEGIN')
        const { rows } = await relayPg.query<{ id: string; routing_key: string; body: string }>('SELECT id, routing_key, body FROM cqrs_outbox ORDER BY id LIMIT 1000 FOR UPDATE')
        if (rows.length === 0) {
          await relayPg.query('COMMIT')
          return
        }
        await publishRaw(confirm, rows.map((r) => ({ routingKey: r.routing_key, body: Buffer.from(r.body), messageId: r.id })), 1000)
        await relayPg.query('DELETE FROM cqrs_outbox WHERE id = ANY($1::bigint[])', [rows.map((r) => r.id)])
        await relayPg.query('COMMIT')
      }
    }
    const cqrsBodies = authorBodies(cqrsId, 1, N, REVISION)
    const rawBodies = authorBodies(rawKey, 1, N, REVISION)
    const allApplied = async (q: string, n: number) => {
      await until(async () => (await messageCount(conn, q)) === 0, `${q} to empty`, 300_000, 10)
      await until(async () => (await countRows(replicaDb, 'author_ref', `cqrs_revision = ${REVISION}`)) === n, `${n} rows in author_ref`, 300_000, 2)
    }
    const saturation = {
      cqrs: async (n: number) => {
        await fillOutbox(master, cqrsId, cqrsBodies.slice(0, n))
        const t0 = performance.now()
        await sat.$cqrs.flush(300_000)
        const relayMs = performance.now() - t0
        await allApplied(qCqrs, n)
        return { ms: performance.now() - t0, relayMs }
      },
      baseline: async (n: number) => {
        await fillOutbox(master, rawKey, rawBodies.slice(0, n))
        const t0 = performance.now()
        await rawRelay()
        const relayMs = performance.now() - t0
        await allApplied(qRaw, n)
        return { ms: performance.now() - t0, relayMs }
      },
    }
    // Warm up both pipelines.
    for (const f of LAG_ONLY ? [] : Object.values(saturation)) {
      await f(ctx.quick ? 200 : 1000)
      await replicaDb.exec('TRUNCATE author_ref')
    }
    const satCqrs: number[] = []
    const satBase: number[] = []
    const satDetails: unknown[] = []
    for (let run = 0; run < (LAG_ONLY ? 0 : ctx.runs); run++) {
      const order = run % 2 === 0 ? (['cqrs', 'baseline'] as const) : (['baseline', 'cqrs'] as const)
      const res: Record<string, { ms: number; relayMs: number }> = {}
      for (const who of order) {
        res[who] = await saturation[who](N)
        await replicaDb.exec('TRUNCATE author_ref')
      }
      satCqrs.push(rate(N, res.cqrs.ms))
      satBase.push(rate(N, res.baseline.ms))
      satDetails.push({ events: N, ...res })
      ctx.log(`  end-to-end saturation run ${run + 1}/${ctx.runs}: cqrs-sync ${satCqrs.at(-1)!.toFixed(0)} events/s (relay alone ${rate(N, res.cqrs.relayMs).toFixed(0)}/s), raw ${satBase.at(-1)!.toFixed(0)} events/s`)
    }

    // ---- lag at a steady 1k events/s ----------------------------------------------------------------
    await master.exec(notifyTrigger('author', 'bench_m'))
    // The baseline's INSERTs run with session_replication_role = replica, so the capture triggers of
    // the default setup (installed below, as its migration would) do not fire for them; the lag
    // stamp fires for every session.
    await master.exec('ALTER TABLE author ENABLE ALWAYS TRIGGER bench_notify_author')
    await replicaDb.exec(notifyTrigger('author_ref', 'bench_r'))
    const listener = await startLagListener(master.url, replicaDb.url, [cqrsId, rawKey])
    closers.push(listener.close)
    const lagBase = await master.client({ poolSize: 16 })
    await installCaptureTriggers(lagBase, { models: { author: { cqrsId } } })
    const live = lagBase.$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), relay: { gatherMs: RELAY_GATHER_MS }, logger: silentLogger, models: { author: { cqrsId } } }))
    closers.push(() => live.$cqrs.close())
    const relayTiming = timeRelay(live.$cqrs.relay)
    const skipTriggers = '-c session_replication_role=replica'
    const pool = new pg.Pool({ connectionString: master.url, max: 16, options: skipTriggers })
    pool.on('error', () => {})
    closers.push(() => pool.end())
    const rawCh = await conn.createConfirmChannel()
    const publishOne = (body: string) =>
      new Promise<void>((resolve, reject) => rawCh.publish(EXCHANGE, rawKey, Buffer.from(body), { persistent: true, contentType: 'application/json' }, (err) => (err ? reject(err) : resolve())))
    const cols = 'name, birth_date, rating, balance, last_seen, is_active, profile, nickname, external_id, cqrs_revision, cqrs_updated'
    // The same writes with the relay in a process of its own (`cqrs relay`, woken by NOTIFY): full runs only.
    const sepBase = await master.client({ poolSize: 16 })
    const sep = sepBase.$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), relay: { enabled: false }, logger: silentLogger, models: { author: { cqrsId } } }))
    closers.push(() => sep.$cqrs.close())
    // Plain Prisma as the app writes, then a confirmed publish of its own: what any publish-on-write
    // costs a Prisma app on this machine. Its sessions skip the capture triggers, as the raw pool's do.
    const plain = await master.client({ poolSize: 16, url: `${master.url}${master.url.includes('?') ? '&' : '?'}options=${encodeURIComponent(skipTriggers)}` })
    const lagOps = {
      cqrs: async (i: number) => (await live.author.create({ data: authorData(i) })).id as number,
      prisma: async (i: number) => {
        const id = (await plain.author.create({ data: authorData(i) })).id as number
        await publishOne(authorEventBody(rawKey, id, 0))
        return id
      },
      relayProcess: async (i: number) => (await sep.author.create({ data: authorData(i) })).id as number,
      // The default setup with `cqrs relay` in its own process, woken by the wake-up trigger that comes with the capture triggers.
      relayWake: async (i: number) => (await sep.author.create({ data: authorData(i) })).id as number,
      // The default setup plus the outbox's row-level NOTIFY trigger: its in-process relay leads.
      notify: async (i: number) => (await live.author.create({ data: authorData(i) })).id as number,
      baseline: async (i: number) => {
        const d = authorData(i)
        const { rows } = await pool.query<{ id: number }>(`INSERT INTO author (${cols}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, now()) RETURNING id`, [
          d.name, d.birthDate, d.rating, d.balance, d.lastSeen, d.isActive, JSON.stringify(d.profile), d.nickname, d.externalId,
        ])
        const id = rows[0].id
        await publishOne(authorEventBody(rawKey, id, 0))
        return id
      },
    }
    type Who = keyof typeof lagOps
    // Which part of the setup a process is, for the CPU each variant costs per write.
    const masterDb = new URL(master.url).pathname.slice(1)
    const replicaDbName = new URL(replicaDb.url).pathname.slice(1)
    const kindOf = (p: ProcessCpu): string | null => {
      if (p.pid === process.pid) return 'writer'
      const service = serviceOf(p)
      if (service === 'postgres') return p.cmdline.includes(masterDb) ? 'master pg' : p.cmdline.includes(replicaDbName) ? 'replica pg' : 'pg other'
      if (service) return service
      if (p.cmdline.includes('raw-consumer')) return 'raw consumer'
      if (p.cmdline.includes('main.js\0consume') || p.cmdline.includes('main.js consume')) return 'cqrs consume'
      if (p.cmdline.includes('main.js\0relay')) return 'cqrs relay'
      if (p.cmdline.includes('lag-listener')) return 'bench listener'
      return null
    }
    const measureLag = async (who: Who, ms: number) => {
      const ids: number[] = []
      let relayProcess: CliWorkers | undefined
      if (who === 'relayProcess' || who === 'relayWake') {
        // Only this relay may see the outbox meanwhile.
        await live.$cqrs.relay.stop()
        // relayProcess: fed by the outbox's row-level NOTIFY at commit; its default poll stays as the
        // safety net. The trigger is there for this variant only (NOTIFY adds a lock at commit to
        // every write). relayWake: woken by the wake-up trigger of the default setup.
        if (who === 'relayProcess') for (const sql of outboxNotifyStatements(lagBase)) await master.exec(sql)
        relayProcess = await startCli(['relay'], { CQRS_TEST_DIALECT: 'postgresql', CQRS_MASTER_URL: master.url, CQRS_ID_SUFFIX: `_${suffix}`, AMQP_URL, CQRS_LOG_LEVEL: 'info' }, /leading/)
      }
      if (who === 'notify') {
        // The in-process relay finds the trigger when it starts, and leads.
        await live.$cqrs.relay.stop()
        for (const sql of outboxNotifyStatements(lagBase)) await master.exec(sql)
        live.$cqrs.relay.start()
        while (live.$cqrs.relay.role !== 'leader') await new Promise((r) => setTimeout(r, 10))
      }
      // How late this process's event loop runs timers: the in-process relay waits behind it.
      const loop = monitorEventLoopDelay({ resolution: 5 })
      loop.enable()
      const relay0 = { ...live.$cqrs.relay.stats }
      relayTiming.reset()
      const cpu0 = new Map(processCpu().map((p) => [p.pid, p.cpuMs]))
      const s = await steady(PER_SEC, ms, 16, async (i) => void ids.push(await lagOps[who](i)))
      loop.disable()
      // Per process, so that one that ended meanwhile (an idle pool connection) does not subtract.
      const cpu: Record<string, number> = {}
      for (const p of processCpu()) {
        const kind = kindOf(p)
        if (kind) cpu[kind] = (cpu[kind] ?? 0) + p.cpuMs - (cpu0.get(p.pid) ?? 0)
      }
      const relayBatches = live.$cqrs.relay.stats.batches - relay0.batches
      const relayPublished = live.$cqrs.relay.stats.published - relay0.published
      const { lags, toBroker, toReplica, missing } = await listener.wait(ids, 60_000)
      if (relayProcess || who === 'notify') {
        if (relayProcess) await relayProcess.stop()
        else await live.$cqrs.relay.stop()
        await master.exec('DROP TRIGGER IF EXISTS cqrs_outbox_notify ON cqrs_outbox')
        live.$cqrs.relay.start()
      }
      if (missing) throw new Error(`${missing} of ${ids.length} rows written on the master did not reach the replica within 60 s`)
      await listener.reset()
      await replicaDb.exec('TRUNCATE author_ref')
      return {
        writes: ids.length,
        achievedPerSec: rate(s.issued, s.issueMs),
        samples: lags.length,
        p50: percentile(lags, 0.5),
        p99: percentile(lags, 0.99),
        max: percentile(lags, 1),
        // Where the lag is: master commit -> broker (relay) and broker -> replica commit (consumer).
        toBroker: { p50: percentile(toBroker, 0.5), p99: percentile(toBroker, 0.99) },
        toReplica: { p50: percentile(toReplica, 0.5), p99: percentile(toReplica, 0.99) },
        masterEventLoopDelayMs: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6 },
        // CPU µs per write by process while writing (consumers and relays include what they did of it then).
        cpuPerWrite: Object.fromEntries(Object.entries(cpu).map(([k, ms]) => [k, Math.round((ms * 1000) / Math.max(1, s.issued))])),
        relay: who === 'cqrs' ? { batches: relayBatches, published: relayPublished, meanBatch: relayPublished / Math.max(1, relayBatches), cycle: relayTiming.summary() } : null,
      }
    }
    await measureLag('cqrs', ctx.quick ? 100 : 500)
    await measureLag('baseline', ctx.quick ? 100 : 500)
    type LagRun = Awaited<ReturnType<typeof measureLag>>
    const lag: Record<Who, LagRun[]> = { cqrs: [], relayProcess: [], relayWake: [], notify: [], prisma: [], baseline: [] }
    // BENCH_LAG_WHO=cqrs,baseline,relayProcess: these variants only (cqrs and baseline always run).
    const chosen = process.env.BENCH_LAG_WHO?.split(',') as Who[] | undefined
    const whos: Who[] = chosen ? [...new Set<Who>(['cqrs', 'baseline', ...chosen])] : LAG_ONLY ? ['cqrs', 'baseline', 'prisma'] : ctx.quick ? ['cqrs', 'baseline', 'prisma'] : ['cqrs', 'baseline', 'prisma', 'relayWake', 'relayProcess', 'notify']
    for (let run = 0; run < ctx.runs; run++) {
      const order = whos.map((_, i) => whos[(i + run) % whos.length])
      for (const who of order) lag[who].push(await measureLag(who, LAG_MS))
      const c = lag.cqrs.at(-1)!
      const b = lag.baseline.at(-1)!
      const split = (x: typeof c) => `(to broker p50 ${x.toBroker.p50.toFixed(1)}/p99 ${x.toBroker.p99.toFixed(1)}, to replica p50 ${x.toReplica.p50.toFixed(1)}/p99 ${x.toReplica.p99.toFixed(1)}; CPU µs/write ${Object.entries(x.cpuPerWrite).map(([k, v]) => `${k} ${v}`).join(', ')})`
      const r = lag.relayProcess.at(-1)
      const p = lag.prisma.at(-1)
      if (p) ctx.log(`  end-to-end lag run ${run + 1}/${ctx.runs}: plain Prisma create + confirmed publish p50 ${p.p50.toFixed(1)} ms p99 ${p.p99.toFixed(1)} ms ${split(p)} at ${p.achievedPerSec.toFixed(0)}/s, event loop delay p99 ${p.masterEventLoopDelayMs.p99.toFixed(1)} ms`)
      const logVariant = (x: LagRun | undefined, label: string) => x && ctx.log(`  end-to-end lag run ${run + 1}/${ctx.runs}: cqrs-sync ${label} p50 ${x.p50.toFixed(1)} ms p99 ${x.p99.toFixed(1)} ms ${split(x)} at ${x.achievedPerSec.toFixed(0)}/s`)
      logVariant(lag.relayWake.at(-1), 'with cqrs relay in its own process, woken by commits (the wake-up trigger)')
      logVariant(r, 'with cqrs relay in its own process, leading (row-level NOTIFY trigger)')
      logVariant(lag.notify.at(-1), 'with the row-level NOTIFY trigger, in-process relay leading')
      ctx.log(`  end-to-end lag run ${run + 1}/${ctx.runs}: cqrs-sync p50 ${c.p50.toFixed(1)} ms p99 ${c.p99.toFixed(1)} ms ${split(c)} at ${c.achievedPerSec.toFixed(0)}/s, event loop delay p99 ${c.masterEventLoopDelayMs.p99.toFixed(1)} ms, relay batches of ${c.relay!.meanBatch.toFixed(1)} (${c.relay!.cycle}); raw p50 ${b.p50.toFixed(1)} ms p99 ${b.p99.toFixed(1)} ms ${split(b)} at ${b.achievedPerSec.toFixed(0)}/s`)
    }
    const lagDetails = lag.cqrs.map((c, i) => ({ cqrs: c, baseline: lag.baseline[i], prisma: lag.prisma[i], relayProcess: lag.relayProcess[i] ?? null, relayWake: lag.relayWake[i] ?? null, notify: lag.notify[i] ?? null }))
    /** The p50 and p99 rows of a variant that ran (none when it did not). */
    const variantRows = (runs: LagRun[], label: string): Measurement[] =>
      runs.length === 0
        ? []
        : [
            { benchmark: 'end-to-end', dialect: 'postgresql', metric: `lag p50, ${label}`, unit: 'ms', cqrs: runs.map((x) => x.p50), baseline: lag.baseline.map((x) => x.p50), baselineLabel: 'pg INSERT + confirmed publish, raw consumer' },
            { benchmark: 'end-to-end', dialect: 'postgresql', metric: `lag p99, ${label}`, unit: 'ms', cqrs: runs.map((x) => x.p99), baseline: lag.baseline.map((x) => x.p99), baselineLabel: 'pg INSERT + confirmed publish, raw consumer', goal: { kind: '<=', value: 15, text: '< 15 ms (issue 12)' } },
          ]
    const sepRows = [
      ...variantRows(lag.relayWake, 'default setup with cqrs relay in its own process, woken by commits (wake-up trigger)'),
      ...variantRows(lag.relayProcess, 'cqrs relay in its own process, leading (row-level NOTIFY trigger)'),
      ...variantRows(lag.notify, 'default setup plus the row-level NOTIFY trigger (in-process relay leading)'),
    ]
    const steadyNote = `steady ${PER_SEC}/s for ${LAG_MS / 1000} s per run`
    const satRows: Measurement[] = LAG_ONLY
      ? []
      : [
          {
            benchmark: 'end-to-end',
            dialect: 'postgresql',
            metric: `saturation from a full outbox, default setup (${N.toLocaleString('en')} events)`,
            unit: 'events/s',
            cqrs: satCqrs,
            baseline: satBase,
            baselineLabel: 'plain pg relay loop + raw consumer process',
            goal: { kind: 'ratio>=', value: 0.8, text: '>= 0.80x (issue 12)' },
            details: satDetails,
          },
        ]
    return [
      ...satRows,
      { benchmark: 'end-to-end', dialect: 'postgresql', metric: `lag p50 (default setup, ${steadyNote})`, unit: 'ms', cqrs: lag.cqrs.map((x) => x.p50), baseline: lag.baseline.map((x) => x.p50), baselineLabel: 'pg INSERT + confirmed publish, raw consumer', details: lagDetails },
      { benchmark: 'end-to-end', dialect: 'postgresql', metric: `lag p99 (default setup, ${steadyNote})`, unit: 'ms', cqrs: lag.cqrs.map((x) => x.p99), baseline: lag.baseline.map((x) => x.p99), baselineLabel: 'pg INSERT + confirmed publish, raw consumer', goal: { kind: '<=', value: 15, text: '< 15 ms (issue 12)' } },
      { benchmark: 'end-to-end', dialect: 'postgresql', metric: 'lag p99, part master commit -> broker', unit: 'ms', cqrs: lag.cqrs.map((x) => x.toBroker.p99), baseline: lag.baseline.map((x) => x.toBroker.p99), baselineLabel: 'pg INSERT + confirmed publish' },
      { benchmark: 'end-to-end', dialect: 'postgresql', metric: 'lag p99, part broker -> replica commit', unit: 'ms', cqrs: lag.cqrs.map((x) => x.toReplica.p99), baseline: lag.baseline.map((x) => x.toReplica.p99), baselineLabel: 'raw consumer' },
      ...sepRows,
      { benchmark: 'end-to-end', dialect: 'postgresql', metric: 'lag p99, plain Prisma create + confirmed publish (no cqrs-sync; what Prisma leaves of the budget)', unit: 'ms', cqrs: lag.prisma.map((x) => x.p99), baseline: lag.baseline.map((x) => x.p99), baselineLabel: 'pg INSERT + confirmed publish, raw consumer' },
      { benchmark: 'end-to-end', dialect: 'postgresql', metric: 'steady write rate achieved, plain Prisma create + confirmed publish', unit: 'events/s', cqrs: lag.prisma.map((x) => x.achievedPerSec), baseline: lag.baseline.map((x) => x.achievedPerSec) },
      { benchmark: 'end-to-end', dialect: 'postgresql', metric: 'steady write rate achieved', unit: 'events/s', cqrs: lag.cqrs.map((x) => x.achievedPerSec), baseline: lag.baseline.map((x) => x.achievedPerSec) },
    ]
  } finally {
    for (const c of closers.reverse()) await c().catch(() => {})
    if (cli) await cli.stop().catch(() => {})
    if (raw) await raw.stop().catch(() => {})
    await conn.close().catch(() => {})
    await deleteQueues([...replicaQueues(qCqrs, [200, 400]), qRaw])
    await master.drop()
    await replicaDb.drop()
  }
}
