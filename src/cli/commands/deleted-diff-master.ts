import type { Command } from 'commander'
import { LineError } from '../../core/dump-format.js'
import { formatBatch, formatDiffHeader, parseBatches, parseDiffHeader, parsePkBatch } from '../../core/diff-format.js'
import { deletedDiffMaster } from '../../master/diff-master.js'
import { Progress } from '../progress.js'
import { EXIT, runCommand } from '../run-command.js'
import { exitAfter, lineReporter, masterModel, openInput, openOutput, progressWanted, readPipe, usageExit } from '../tool-support.js'

const EXAMPLES = `
Input: the output of 'cqrs deleted-diff-replica' (or django-cqrs's cqrs_deleted_diff_replica).
Output: the same header, then per batch a JSON array of the pks the master does not have (rows the
model's filter leaves out count as absent). Pipe it into 'cqrs deleted-sync-replica'.
Exit: 0 nothing to delete, 1 pks written (drift, like diff(1)), 2 error or bad input lines, 64 bad usage.

Examples:
  cqrs deleted-diff-replica --cqrs-id author | cqrs deleted-diff-master | cqrs deleted-sync-replica
`

export function registerDeletedDiffMaster(program: Command): void {
  usageExit(
    program
      .command('deleted-diff-master')
      .description('Stage 2 of the deleted-diff pipe: keep the replica pks the master no longer has')
      .option('-i, --input <file>', 'deleted-diff-replica output, or - for stdin', '-')
      .option('-o, --output <file>', 'file to write, or - for stdout', '-')
      .option('--progress', 'progress lines on stderr even when it is not a terminal')
      .addHelpText('after', EXAMPLES),
  ).action((opts, cmd: Command) =>
    exitAfter(runCommand(cmd, async (ctx) => {
      const label = 'cqrs deleted-diff-master'
      const input = openInput(opts.input)
      const { head, rest } = await readPipe(input, "deleted-diff-replica's output ('<cqrs_id>,<timestamp>' on line 1)")
      const header = parseDiffHeader(head.text)
      const m = await masterModel(ctx, header.cqrsId)
      const out = openOutput(opts.output)
      await out.write(`${formatDiffHeader(header)}\n`)
      const bad = lineReporter(label)
      const progress = new Progress({ label, enabled: progressWanted(opts.progress), fraction: input.fraction })
      let missing = 0
      for await (const ev of deletedDiffMaster({ source: m.source, plan: m.plan, batches: parseBatches(rest, parsePkBatch) })) {
        if (ev instanceof LineError) {
          bad.report(ev)
          continue
        }
        if (ev.missing.length) await out.write(`${formatBatch(ev.missing)}\n`)
        missing += ev.missing.length
        progress.add(ev.checked)
      }
      await out.close()
      progress.summary(`checked ${progress.done} replica pks of ${header.cqrsId}: ${missing ? `${missing} not on the master` : 'all on the master'}${bad.count ? `; ${bad.count} bad lines` : ''}`)
      return bad.count ? EXIT.error : missing ? EXIT.drift : EXIT.ok
    })),
  )
}
