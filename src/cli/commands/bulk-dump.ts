import type { Command } from 'commander'
import { formatDumpHeader } from '../../core/dump-format.js'
import { dumpText } from '../../master/dump.js'
import { Progress } from '../progress.js'
import { EXIT, runCommand } from '../run-command.js'
import { batchSize, exitAfter, filteredMaster, openOutput, progressWanted, usageExit } from '../tool-support.js'

const EXAMPLES = `
Output: line 1 the cqrs_id, then one JSON object per row (a SAVE's instance_data), as django-cqrs's
cqrs_bulk_dump writes it; 'cqrs bulk-load' and django-cqrs's cqrs_bulk_load read it.
Exit: 0 done, 2 error (unknown cqrs_id, bad filter, database), 64 bad usage.

Examples:
  cqrs bulk-dump --cqrs-id author > author.dump
  cqrs bulk-dump --cqrs-id author -o author.dump --progress
  cqrs bulk-dump --cqrs-id author --filter '{"id":{"gte":1000}}' | gzip > part.dump.gz
`

export function registerBulkDump(program: Command): void {
  usageExit(
    program
      .command('bulk-dump')
      .description('Write the rows of a master model to a file or stdout (django-cqrs dump format); no broker involved')
      .requiredOption('--cqrs-id <id>', 'the cqrs_id of the master model')
      .option('-o, --output <file>', 'file to write, or - for stdout', '-')
      .option('--filter <json>', 'only rows matching this Prisma where object, e.g. \'{"id":{"gte":100}}\'')
      .option('--batch <n>', 'rows read per query (env CQRS_TOOLS_BATCH; default 5000)')
      .option('--progress', 'progress lines on stderr even when it is not a terminal')
      .addHelpText('after', EXAMPLES),
  ).action((opts, cmd: Command) =>
    exitAfter(runCommand(cmd, async (ctx) => {
      const { m, where, total } = await filteredMaster(ctx, opts.cqrsId, opts.filter)
      const out = openOutput(opts.output)
      const progress = new Progress({ label: 'cqrs bulk-dump', enabled: progressWanted(opts.progress), total })
      await out.write(`${formatDumpHeader(m.plan.cqrsId)}\n`)
      let rows = 0
      for await (const page of dumpText({ source: m.source, plan: m.plan, ctx: m.buildContext('bulk-dump'), batchSize: batchSize(opts.batch, 5000), where })) {
        if (page.text) await out.write(page.text)
        rows += page.rows
        progress.add(page.scanned)
      }
      await out.close()
      progress.summary(`dumped ${rows} rows of ${m.plan.cqrsId}${opts.output === '-' ? '' : ` to ${opts.output}`}`)
      return EXIT.ok
    })),
  )
}
