import type { Command } from 'commander'
import { DEFAULTS } from '../../config/defaults.js'
import { nonNegativeInt, positiveInt, setting } from '../../config/settings.js'
import { createRelay } from '../../prisma/cqrs-master.js'
import { metricsPortFlag, startCliMetrics } from '../metrics-option.js'
import { runCommand, waitForSignal } from '../run-command.js'

export function registerRelay(program: Command): void {
  program
    .command('relay')
    .description('Publish the master outbox to the broker (for deployments that run the relay apart from the app)')
    .option('--once', 'publish what is in the outbox now, then exit')
    .option('--batch <n>', `rows per publish batch (env CQRS_RELAY_BATCH; default ${DEFAULTS.relay.batchSize})`)
    .option('--poll-ms <n>', `how often an idle relay looks for new rows (env CQRS_RELAY_POLL_MS; default ${DEFAULTS.relay.pollIntervalMs}); after a batch that found rows it looks again at once (gathered), and after an empty look in 10, 20, 40 ms... up to this. On PostgreSQL the wake-up trigger that comes with the capture triggers wakes the leading relay at commit (the NOTIFY trigger of \`cqrs triggers --notify\` hands it each row), and the poll is only a safety net`)
    .option('--gather-ms <n>', `when commits arrive while a batch is out, start the next batch at least this long after it started, so it takes them all (env CQRS_RELAY_GATHER_MS; default ${DEFAULTS.relay.gatherMs}; 0: at once)`)
    .option('--no-listen', "PostgreSQL: poll only, do not LISTEN for the outbox triggers' NOTIFY")
    .option(...metricsPortFlag(' while it runs (not with --once)'))
    .addHelpText('after', '\nExamples:\n  cqrs relay                 # run until SIGTERM\n  cqrs relay --once          # drain the outbox and exit (cron, deploy hooks)\n')
    .action((opts, cmd: Command) =>
      runCommand(cmd, async (ctx) => {
        const master = await ctx.master()
        const batchSize = setting({ name: 'batch', env: 'CQRS_RELAY_BATCH', default: DEFAULTS.relay.batchSize, parse: positiveInt('--batch') }, opts.batch, master.relay?.batchSize)
        const pollIntervalMs = setting({ name: 'poll-ms', env: 'CQRS_RELAY_POLL_MS', default: DEFAULTS.relay.pollIntervalMs, parse: positiveInt('--poll-ms') }, opts.pollMs, master.relay?.pollIntervalMs)
        const gatherMs = setting({ name: 'gather-ms', env: 'CQRS_RELAY_GATHER_MS', default: DEFAULTS.relay.gatherMs, parse: nonNegativeInt('--gather-ms') }, opts.gatherMs, master.relay?.gatherMs)
        const transport = master.transport ?? (await ctx.transport())
        const { prisma, transport: _t, ...masterOptions } = master
        const relay = createRelay(prisma, transport, { batchSize, pollIntervalMs, gatherMs, listen: opts.listen !== false, logger: ctx.logger, master: masterOptions })
        ctx.onClose(() => transport.close())
        if (opts.once) {
          const n = await relay.drain(10 * 60_000)
          process.stderr.write(`cqrs relay: published ${n} event(s); outbox empty\n`)
          return 0
        }
        await startCliMetrics(ctx, opts.metricsPort, 'process', 'cqrs relay')
        relay.start()
        process.stderr.write(`cqrs relay: running (batch ${batchSize}, poll ${pollIntervalMs} ms, gather ${gatherMs} ms); SIGTERM to stop\n`)
        await waitForSignal()
        await relay.stop()
        process.stderr.write(`cqrs relay: stopped after publishing ${relay.stats.published} event(s)\n`)
        return 0
      }),
    )
}
