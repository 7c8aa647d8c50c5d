import type { Command } from 'commander'

/** One `cqrs` command: its name and one-line description for `cqrs --help`, and how to load it. */
export interface CommandEntry {
  name: string
  /** Shown by `cqrs --help`; the command's own file sets the same text (a unit test keeps them equal). */
  description: string
  /** Imports the command's module and registers it; only the command being run is loaded. */
  load(): Promise<(program: Command) => void>
}

/**
 * Every command of the CLI, in `cqrs --help` order. Each loads its module only when it runs (or when
 * its own `--help` is asked for), so `cqrs --help` and a command's start-up import only what that
 * command uses: `cqrs status` does not load the bulk-load COPY path, `cqrs --help` loads no Prisma.
 */
export const COMMANDS: CommandEntry[] = [
  { name: 'consume', description: "Consume the replica's queue and apply every message, version-gated", load: async () => (await import('./commands/consume.js')).registerConsume },
  { name: 'relay', description: 'Publish the master outbox to the broker (for deployments that run the relay apart from the app)', load: async () => (await import('./commands/relay.js')).registerRelay },
  { name: 'bulk-dump', description: 'Write the rows of a master model to a file or stdout (django-cqrs dump format); no broker involved', load: async () => (await import('./commands/bulk-dump.js')).registerBulkDump },
  { name: 'bulk-load', description: "Load a dump into the replica table of its cqrs_id, with the replica's version-gated apply; no broker involved", load: async () => (await import('./commands/bulk-load.js')).registerBulkLoad },
  { name: 'sync', description: 'Re-publish master rows as SYNC messages, to every replica or to one queue', load: async () => (await import('./commands/sync.js')).registerSync },
  { name: 'diff-master', description: 'Stage 1 of the diff pipe: list every master row as [pk, revision], in batches', load: async () => (await import('./commands/diff-master.js')).registerDiffMaster },
  { name: 'diff-replica', description: 'Stage 2 of the diff pipe: keep the master pks that are missing or stale in this replica', load: async () => (await import('./commands/diff-replica.js')).registerDiffReplica },
  { name: 'diff-sync', description: 'Stage 3 of the diff pipe: send the drifted master rows as SYNC to the replica queue', load: async () => (await import('./commands/diff-sync.js')).registerDiffSync },
  { name: 'deleted-diff-replica', description: 'Stage 1 of the deleted-diff pipe: list every pk of the replica table, in batches', load: async () => (await import('./commands/deleted-diff-replica.js')).registerDeletedDiffReplica },
  { name: 'deleted-diff-master', description: 'Stage 2 of the deleted-diff pipe: keep the replica pks the master no longer has', load: async () => (await import('./commands/deleted-diff-master.js')).registerDeletedDiffMaster },
  { name: 'deleted-sync-replica', description: 'Stage 3 of the deleted-diff pipe: delete from the replica the rows the master no longer has', load: async () => (await import('./commands/deleted-sync-replica.js')).registerDeletedSyncReplica },
  { name: 'status', description: 'Outbox backlog on a master; queue depth, consumers, retrying and dead letters on a replica', load: async () => (await import('./commands/status.js')).registerStatus },
  { name: 'dead-letters', description: "Inspect, retry or purge the replica's dead-letter queue (dead_letter_<queue>)", load: async () => (await import('./commands/dead-letters.js')).registerDeadLetters },
  { name: 'schema', description: "Print the library's tables (cqrs_outbox, cqrs_tombstone) as Prisma models, or as SQL with --sql", load: async () => (await import('./commands/schema.js')).registerSchema },
  { name: 'triggers', description: "Print, write as a Prisma migration (--migration) or install (--apply) the capture triggers of the master models (capture: 'trigger', the default)", load: async () => (await import('./commands/triggers.js')).registerTriggers },
]

/**
 * The command an argv names: its first word that is not an option (nor the value of `-c/--config`),
 * if that word is a command. `cqrs -c x.ts status --json` and `cqrs help status` name `status`.
 */
export function commandNamed(args: readonly string[]): CommandEntry | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    if (a === '-c' || a === '--config') {
      i++
      continue
    }
    if (a === '--') return undefined
    if (a.startsWith('-') || a === 'help') continue // `cqrs help status` names status
    return COMMANDS.find((c) => c.name === a)
  }
  return undefined
}
