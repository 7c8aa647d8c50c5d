import { fork, type ChildProcess } from 'node:child_process'
import type { Command } from 'commander'
import { positiveInt, setting } from '../../config/settings.js'
import { ConfigError } from '../../core/errors.js'
import { cqrsReplica } from '../../prisma/cqrs-replica.js'
import { runCommand, waitForSignal } from '../run-command.js'

const EXAMPLES = `
Examples:
  cqrs consume                      # one worker
  cqrs consume -w 2                 # two worker processes on the same queue
  cqrs consume --cqrs-id account    # only some cqrs_ids (the others stay queued)
  cqrs consume --from 2026-11-01T00:00:00Z   # a NEW queue starting from that time of the stream (nats)
  CQRS_LOG_LEVEL=info cqrs consume  # periodic stats on stderr
`

export function registerConsume(program: Command): void {
  program
    .command('consume')
    .description("Consume the replica's queue and apply every message, version-gated")
    .option('-w, --workers <n>', 'worker processes (env CQRS_WORKERS; default 1)')
    .option('--prefetch <n>', 'unacked messages per worker (env CQRS_PREFETCH; default 1000)')
    .option('--batch <n>', 'messages applied per statement (env CQRS_BATCH; default 200)')
    .option('--cqrs-id <ids...>', 'consume only these cqrs_ids')
    .option('--from <time>', "start a new queue at this time of the transport's retention (ISO 8601; nats only)")
    .addHelpText('after', EXAMPLES)
    .action((opts, cmd: Command) =>
      runCommand(cmd, async (ctx) => {
        const workers = setting({ name: 'workers', env: 'CQRS_WORKERS', default: 1, parse: positiveInt('--workers') }, opts.workers, undefined)
        if (workers > 1 && !process.env.CQRS_WORKER_ID) return supervise(workers)
        const options = await ctx.replicaOptions()
        const prefetch = setting({ name: 'prefetch', env: 'CQRS_PREFETCH', default: 1000, parse: positiveInt('--prefetch') }, opts.prefetch, options.prefetch)
        const batchSize = setting({ name: 'batch', env: 'CQRS_BATCH', default: 200, parse: positiveInt('--batch') }, opts.batch, options.batchSize)
        let handlers = options.handlers
        if (opts.cqrsId) {
          const unknown = (opts.cqrsId as string[]).filter((id) => !(id in handlers))
          if (unknown.length) throw new ConfigError(`--cqrs-id ${unknown.join(', ')}: no such handler in ${ctx.configPath}; known: ${Object.keys(handlers).join(', ')}`)
          handlers = Object.fromEntries(Object.entries(handlers).filter(([id]) => opts.cqrsId.includes(id)))
        }
        const transport = options.transport ?? (await ctx.transport())
        const from = opts.from === undefined ? options.from : parseTime('--from', opts.from)
        const replica = cqrsReplica({ ...options, handlers, transport, prefetch, batchSize, from, logger: options.logger ?? ctx.logger })
        // A refused start (a bad --from, a queue of another type) must not leave the connections holding the process.
        await replica.start().catch(async (err: unknown) => {
          await replica.stop().catch(() => {})
          throw err
        })
        const tag = process.env.CQRS_WORKER_ID ? ` worker ${process.env.CQRS_WORKER_ID}` : ''
        process.stderr.write(`cqrs consume${tag}: ready; queue ${replica.spec.queue}, cqrs_ids ${replica.spec.cqrsIds.join(', ')}, prefetch ${prefetch}, batch ${batchSize} (pid ${process.pid})\n`)
        const every = setInterval(() => ctx.logger.info('cqrs consume: stats', { queue: replica.spec.queue, ...replica.stats.snapshot() }), 10_000)
        every.unref()
        const signal = await waitForSignal()
        clearInterval(every)
        await replica.stop()
        const s = replica.stats.snapshot()
        process.stderr.write(`cqrs consume${tag}: ${signal}: drained and stopped; applied ${s.applied}, skipped ${s.skipped}, retried ${s.retried}, dead-lettered ${s.deadLettered}\n`)
        return 0
      }),
    )
}

function parseTime(flag: string, raw: string): Date {
  const d = new Date(raw)
  if (Number.isNaN(d.getTime())) throw new ConfigError(`${flag} must be a time such as 2026-11-01T00:00:00Z; got '${raw}'`)
  return d
}

/**
 * Run `n` worker processes of this same command and keep them running: a worker that dies is
 * restarted (its unacked messages went back to the queue); SIGTERM is passed on and awaited.
 */
async function supervise(n: number): Promise<number> {
  const children = new Map<number, ChildProcess>()
  let stopping = false
  const start = (id: number, delayMs = 0) => {
    const t = setTimeout(() => {
      if (stopping) return
      const child = fork(process.argv[1], process.argv.slice(2), { env: { ...process.env, CQRS_WORKER_ID: String(id) }, stdio: 'inherit', execArgv: process.execArgv })
      children.set(id, child)
      child.on('exit', (code, signal) => {
        children.delete(id)
        if (stopping) return
        process.stderr.write(`cqrs consume: worker ${id} exited (${signal ?? code}); restarting\n`)
        start(id, 1000)
      })
    }, delayMs)
    t.unref()
  }
  for (let i = 1; i <= n; i++) start(i)
  process.stderr.write(`cqrs consume: supervising ${n} workers (pid ${process.pid})\n`)
  const signal = await waitForSignal()
  stopping = true
  const exits = [...children.values()].map((c) => new Promise<number>((resolve) => c.once('exit', (code) => resolve(code ?? 0))))
  for (const c of children.values()) c.kill(signal)
  const codes = await Promise.all(exits)
  process.stderr.write(`cqrs consume: all workers stopped\n`)
  return Math.max(0, ...codes)
}
