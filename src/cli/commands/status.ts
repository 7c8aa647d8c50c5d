import type { Command } from 'commander'
import { ConfigError } from '../../core/errors.js'
import { cqrsStatus } from '../../prisma/cqrs-status.js'
import { runtime } from '../../transport/runtime-transport.js'
import { duration } from '../../core/duration.js'
import { EXIT, runCommand } from '../run-command.js'
import { exitAfter, usageExit } from '../tool-support.js'

export type { StatusReport } from '../../prisma/cqrs-status.js'

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
      const master = await ctx.master(false)
      const replicaOptions = await ctx.replicaOptions(false)
      if (!master && !replicaOptions) throw new ConfigError(`${ctx.configPath} has neither a \`master\` nor a \`replica\` section: nothing to report`)
      let replica
      if (replicaOptions) {
        const transport = replicaOptions.transport ?? (await ctx.transport())
        ctx.onClose(() => runtime(transport).close())
        replica = { ...replicaOptions, transport }
      }
      const report = await cqrsStatus({ master, replica })
      if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`)
      else {
        const m = report.master
        if (m) process.stdout.write(`master  outbox: ${m.outboxBacklog} events waiting${m.oldestEventAgeSeconds !== null ? `, oldest ${duration(m.oldestEventAgeSeconds * 1000)} old` : ''}\n`)
        const relays = m?.relays
        if (relays?.notifyTrigger === 'row' || relays?.notifyTrigger === 'wake') {
          const l = relays.leader
          const part = relays.notifyTrigger === 'row' ? 'leading relay (publishes rows as they commit)' : 'leading relay (woken by commits)'
          const none = relays.notifyTrigger === 'row' ? 'none (no relay runs, or those running started before the NOTIFY trigger was installed)' : 'none (no `cqrs relay` runs: in-process relays are woken by their own process\'s commits)'
          process.stdout.write(l ? `master  ${part}: pid ${l.pid}${l.application ? ` (${l.application})` : ''}${l.clientAddr ? ` from ${l.clientAddr}` : ''}, connected since ${l.since}\n` : `master  leading relay: ${none}\n`)
        } else if (relays?.notifyTrigger === 'statement') process.stdout.write('master  NOTIFY trigger: the statement-level one of an earlier version (relays are woken, none leads; `cqrs triggers --notify-only --apply` replaces it)\n')
        const r = report.replica
        if (r) process.stdout.write(`replica queue ${r.queue}: ${r.messages} ready, ${r.consumers} consumers, ${r.retrying} retrying, ${r.deadLettered} dead-lettered\n`)
      }
      return EXIT.ok
    })),
  )
}
