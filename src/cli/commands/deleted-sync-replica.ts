import type { Command } from 'commander'
import { LineError } from '../../core/dump-format.js'
import { parseBatches, parseDiffHeader, parsePkBatch } from '../../core/diff-format.js'
import { stringifyJson } from '../../core/json.js'
import { deleteOnReplica } from '../../replica/deleted-sync-replica.js'
import { Progress } from '../progress.js'
import { EXIT, runCommand } from '../run-command.js'
import { exitAfter, lineReporter, openInput, progressWanted, readPipe, replicaTable, usageExit } from '../tool-support.js'

const EXAMPLES = `
Input: the output of 'cqrs deleted-diff-master' (or django-cqrs's cqrs_deleted_diff_master).
Each listed row is deleted as a DELETE at the revision this replica holds, through the version-gated
path: a tombstone keeps a late SAVE of the old row out, and a row updated meanwhile is kept.
Exit: 0 done, 2 error or bad input lines, 64 bad usage.

Examples:
  cqrs deleted-diff-replica --cqrs-id author | cqrs deleted-diff-master | cqrs deleted-sync-replica
`

export function registerDeletedSyncReplica(program: Command): void {
  usageExit(
    program
      .command('deleted-sync-replica')
      .description('Stage 3 of the deleted-diff pipe: delete from the replica the rows the master no longer has')
      .option('-i, --input <file>', 'deleted-diff-master output, or - for stdin', '-')
      .option('--progress', 'progress lines on stderr even when it is not a terminal')
      .addHelpText('after', EXAMPLES),
  ).action((opts, cmd: Command) =>
    exitAfter(runCommand(cmd, async (ctx) => {
      const label = 'cqrs deleted-sync-replica'
      const input = openInput(opts.input)
      const { head, rest } = await readPipe(input, "deleted-diff-master's output ('<cqrs_id>,<timestamp>' on line 1)")
      const header = parseDiffHeader(head.text)
      const t = await replicaTable(ctx, header.cqrsId)
      const bad = lineReporter(label)
      const progress = new Progress({ label, enabled: progressWanted(opts.progress), fraction: input.fraction })
      const tally = { deleted: 0, absent: 0, kept: 0, failed: 0 }
      for await (const ev of deleteOnReplica({ reader: t.reader, target: t.target, applier: t.applier, batches: parseBatches(rest, parsePkBatch) })) {
        if (ev instanceof LineError) {
          bad.report(ev)
          continue
        }
        for (const { pk, error } of ev.errors) bad.report(new LineError(ev.line, `pk ${stringifyJson(pk)} not deleted: ${error.message}`))
        tally.deleted += ev.deleted
        tally.absent += ev.absent
        tally.kept += ev.kept
        tally.failed += ev.errors.length
        progress.add(ev.deleted + ev.absent + ev.kept + ev.errors.length)
      }
      progress.summary(`deleted ${tally.deleted} rows of ${header.cqrsId} from ${t.target.table} (${tally.absent} already gone, ${tally.kept} kept: updated meanwhile)${bad.count ? `; ${bad.count} bad lines or rows` : ''}`)
      return bad.count ? EXIT.error : EXIT.ok
    })),
  )
}
