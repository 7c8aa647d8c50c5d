import type { Command } from 'commander'
import { ConfigError } from '../../core/errors.js'
import { silentLogger } from '../../core/logger.js'
import { cqrsReplica } from '../../prisma/cqrs-replica.js'
import { modelsOf, providerOf } from '../../prisma/internals.js'
import { findModel } from '../../prisma/model-plans.js'
import { PrismaOutboxStore } from '../../prisma/prisma-outbox-store.js'
import { runtime } from '../../transport/runtime-transport.js'
import type { QueueStats } from '../../transport/types.js'
import { duration } from '../progress.js'
import { EXIT, runCommand } from '../run-command.js'
import { exitAfter, usageExit } from '../tool-support.js'

/** What `cqrs status` reports; `--json` prints it as it is. */
export interface StatusReport {
  master?: { outboxBacklog: number; oldestEventAt: string | null; oldestEventAgeSeconds: number | null }
  replica?: QueueStats
}

const EXAMPLES = `
On a master: events waiting in the outbox and the age of the oldest (a growing age means no relay runs).
On a replica: its queue's ready messages and consumers, messages waiting for a retry, dead letters.
Both when the config has both sections.
Exit: 0 done, 2 error (database or broker unreachable), 64 bad usage.

Examples:
  cqrs status
  cqrs status --json | jq .replica.deadLettered
`

export function registerStatus(program: Command): void {
  usageExit(
    program
      .command('status')
      .description('Outbox backlog on a master; queue depth, consumers, retrying and dead letters on a replica')
      .option('--json', 'print the report as JSON')
      .addHelpText('after', EXAMPLES),
  ).action((opts, cmd: Command) =>
    exitAfter(runCommand(cmd, async (ctx) => {
      const report: StatusReport = {}
      const master = await ctx.master(false)
      const replicaOptions = await ctx.replicaOptions(false)
      if (!master && !replicaOptions) throw new ConfigError(`${ctx.configPath} has neither a \`master\` nor a \`replica\` section: nothing to report`)
      if (master) {
        const name = master.outboxModel ?? 'CqrsOutbox'
        const meta = findModel(modelsOf(master.prisma), name)
        if (!meta) throw new ConfigError(`The outbox model '${name}' is not in the master's Prisma schema; add prisma/cqrs.<provider>.prisma from cqrs-sync to it`)
        const { count, oldestAt } = await new PrismaOutboxStore(master.prisma, providerOf(master.prisma), meta).backlog()
        report.master = { outboxBacklog: count, oldestEventAt: oldestAt?.toISOString() ?? null, oldestEventAgeSeconds: oldestAt ? Math.max(0, (Date.now() - oldestAt.getTime()) / 1000) : null }
      }
      if (replicaOptions) {
        const transport = runtime(replicaOptions.transport ?? (await ctx.transport()))
        ctx.onClose(() => transport.close())
        if (!transport.queueStats) throw new ConfigError(`the ${transport.name} transport cannot report queue depths (it has no queueStats())`)
        const replica = cqrsReplica({ ...replicaOptions, transport, logger: silentLogger })
        report.replica = await transport.queueStats(replica.spec)
      }
      if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`)
      else {
        const m = report.master
        if (m) process.stdout.write(`master  outbox: ${m.outboxBacklog} events waiting${m.oldestEventAgeSeconds !== null ? `, oldest ${duration(m.oldestEventAgeSeconds * 1000)} old` : ''}\n`)
        const r = report.replica
        if (r) process.stdout.write(`replica queue ${r.queue}: ${r.messages} ready, ${r.consumers} consumers, ${r.retrying} retrying, ${r.deadLettered} dead-lettered\n`)
      }
      return EXIT.ok
    })),
  )
}
