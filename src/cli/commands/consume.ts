import type { Command } from 'commander'
import { DEFAULTS } from '../../config/defaults.js'
import { positiveInt, setting } from '../../config/settings.js'
import { ConfigError } from '../../core/errors.js'
import { cqrsReplica } from '../../prisma/cqrs-replica.js'
import { metricsPortFlag, startCliMetrics } from '../metrics-option.js'
import { runCommand } from '../run-command.js'
import { stopSignal } from '../stop-signal.js'
import { supervise, tellSupervisorStopping } from '../supervisor.js'

const EXAMPLES = `
Examples:
  cqrs consume                      # one worker
  cqrs consume -w 2                 # two worker processes on the same queue
  cqrs consume --cqrs-id account    # only some cqrs_ids (the others stay queued)
  cqrs consume --from 2026-11-01T00:00:00Z   # a NEW queue starting from that time of the stream (nats)
  CQRS_LOG_LEVEL=info cqrs consume  # periodic stats on stderr

The process tree stops as one: SIGTERM or SIGINT to the supervisor or to any worker drains every
worker (in-flight messages acked or returned to the queue) and exits 0. Workers stop when their
supervisor goes away, and the supervisor stops when its own parent does (npx, a shell); run it with
exec, or pass --no-parent-watch when it is meant to outlive the process that started it.
`

export function registerConsume(program: Command): void {
  program
    .command('consume')
    .description("Consume the replica's queue and apply every message, version-gated")
    .option('-w, --workers <n>', 'worker processes (env CQRS_WORKERS; default 1)')
    .option('--prefetch <n>', `unacked messages per worker (env CQRS_PREFETCH; default ${DEFAULTS.replica.prefetch})`)
    .option('--batch <n>', `messages applied per statement (env CQRS_BATCH; default ${DEFAULTS.replica.batchSize})`)
    .option('--cqrs-id <ids...>', 'consume only these cqrs_ids')
    .option(...metricsPortFlag('; with -w the supervisor serves the sum of its workers'))
    .option('--no-parent-watch', 'keep running when the process that started this one exits (default: stop with it)')
    .option('--from <time>', "start a new queue at this time of the transport's retention (ISO 8601; nats only)")
    .addHelpText('after', EXAMPLES)
    .action((opts, cmd: Command) =>
      runCommand(cmd, async (ctx) => {
        // Watching starts now: a supervisor that dies while this worker connects must not be missed.
        const isWorker = Boolean(process.env.CQRS_WORKER_ID)
        using stop = stopSignal({ watchParent: isWorker || opts.parentWatch !== false })
        const workers = setting({ name: 'workers', env: 'CQRS_WORKERS', default: 1, parse: positiveInt('--workers') }, opts.workers, undefined)
        const supervisor = workers > 1 && !isWorker
        const metrics = await startCliMetrics(ctx, opts.metricsPort, supervisor ? 'supervisor' : isWorker && process.send ? 'worker' : 'process', 'cqrs consume')
        if (supervisor) return await supervise(workers, stop, metrics?.supervisor)
        const options = await ctx.replicaOptions()
        const prefetch = setting({ name: 'prefetch', env: 'CQRS_PREFETCH', default: DEFAULTS.replica.prefetch, parse: positiveInt('--prefetch') }, opts.prefetch, options.prefetch)
        const batchSize = setting({ name: 'batch', env: 'CQRS_BATCH', default: DEFAULTS.replica.batchSize, parse: positiveInt('--batch') }, opts.batch, options.batchSize)
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
        const tag = isWorker ? ` worker ${process.env.CQRS_WORKER_ID}` : ''
        process.stderr.write(`cqrs consume${tag}: ready; queue ${replica.spec.queue}, cqrs_ids ${replica.spec.cqrsIds.join(', ')}, prefetch ${prefetch}, batch ${batchSize} (pid ${process.pid})\n`)
        const every = setInterval(() => ctx.logger.info('cqrs consume: stats', { queue: replica.spec.queue, ...replica.stats.snapshot() }), 10_000)
        every.unref()
        const reason = await stop.wait()
        // A signal sent to this worker alone stops the whole tree, not just this process.
        if (reason.startsWith('SIG')) tellSupervisorStopping(reason)
        clearInterval(every)
        await replica.stop()
        const s = replica.stats.snapshot()
        process.stderr.write(`cqrs consume${tag}: ${reason}: drained and stopped; applied ${s.applied}, skipped ${s.skipped}, retried ${s.retried}, dead-lettered ${s.deadLettered}\n`)
        return 0
      }),
    )
}

function parseTime(flag: string, raw: string): Date {
  const d = new Date(raw)
  if (Number.isNaN(d.getTime())) throw new ConfigError(`${flag} must be a time such as 2026-11-01T00:00:00Z; got '${raw}'`)
  return d
}

