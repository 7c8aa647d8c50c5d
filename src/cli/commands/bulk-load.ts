import type { Command } from 'commander'
import { LineError, parseDumpHeader } from '../../core/dump-format.js'
import { loadDump } from '../../replica/load.js'
import { Progress } from '../progress.js'
import { EXIT, runCommand } from '../run-command.js'
import { batchSize, exitAfter, lineReporter, openInput, progressWanted, readPipeBlocks, replicaTable, usageExit } from '../tool-support.js'

const EXAMPLES = `
Input: a dump (line 1 the cqrs_id, then one JSON object per row), from 'cqrs bulk-dump' or django-cqrs's
cqrs_bulk_dump. Each row is applied like a SYNC, version-gated: missing rows are inserted, rows at a
lower or equal revision overwritten, newer rows (and tombstones at least as new) kept.
A bad line is reported on stderr with its number; the other lines are still loaded.
Exit: 0 every line loaded, 2 some line failed (or an error stopped the load), 64 bad usage.

Examples:
  cqrs bulk-load -i author.dump
  cqrs bulk-load -i author.dump --clear --progress     # make the table equal to the dump
  ssh master 'cqrs bulk-dump --cqrs-id author' | cqrs bulk-load -i -
`

export function registerBulkLoad(program: Command): void {
  usageExit(
    program
      .command('bulk-load')
      .description("Load a dump into the replica table of its cqrs_id, with the replica's version-gated apply; no broker involved")
      .requiredOption('-i, --input <file>', 'dump file, or - for stdin')
      .option('--clear', "delete the replica table's rows first")
      .option('--batch <n>', 'rows per transaction (env CQRS_TOOLS_BATCH; default 10000)')
      .option('--progress', 'progress lines on stderr even when it is not a terminal')
      .addHelpText('after', EXAMPLES),
  ).action((opts, cmd: Command) =>
    exitAfter(runCommand(cmd, async (ctx) => {
      const input = openInput(opts.input)
      const { head, rest } = await readPipeBlocks(input, 'a dump starting with its cqrs_id on line 1')
      const cqrsId = parseDumpHeader(head.text)
      const t = await replicaTable(ctx, cqrsId)
      const label = 'cqrs bulk-load'
      if (opts.clear) process.stderr.write(`${label}: cleared ${await t.reader.clear()} rows of ${t.target.table}\n`)
      const bad = lineReporter(label)
      const progress = new Progress({ label, enabled: progressWanted(opts.progress), fraction: input.fraction })
      const tally = { applied: 0, skipped: 0, failed: 0 }
      let refused = 0
      const onBulkError = (e: Error, lines: Array<{ line: number }>) => {
        // Said once with the reason, then counted: the batch is applied row by row, which names bad rows.
        if (refused++ === 0) process.stderr.write(`${label}: the database refused the COPY batch of lines ${lines[0].line}-${lines[lines.length - 1].line} (${e.message.split('\n')[0]}); such batches are applied row by row\n`)
      }
      for await (const ev of loadDump({ target: t.target, applier: t.applier, blocks: rest, batchSize: batchSize(opts.batch, 10_000), onBulkError })) {
        if (ev instanceof LineError) {
          bad.report(ev)
          continue
        }
        tally.applied += ev.applied
        tally.skipped += ev.skipped
        tally.failed += ev.failed
        progress.add(ev.lines)
      }
      progress.summary(`loaded ${progress.done} rows of ${cqrsId} into ${t.target.table}: ${tally.applied} applied, ${tally.skipped} skipped (replica as new or newer), ${tally.failed} failed${refused ? `; ${refused} batches applied row by row` : ''}`)
      return tally.failed ? EXIT.error : EXIT.ok
    })),
  )
}
