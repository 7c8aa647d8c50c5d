import { decodeValue, encodeValue, type ScalarKind } from '../core/codec.js'
import { LineError } from '../core/dump-format.js'
import { decodedBatches, type Parsed, type WirePk } from '../core/diff-format.js'
import { ConfigError } from '../core/errors.js'
import { parseJson } from '../core/json.js'
import { rowHash, type HashedKeys } from '../core/row-hash.js'
import type { TableTarget, TargetColumn } from './apply-op.js'
import type { TableReader } from './table-reader.js'

/** A replica reader that can give each column's text as the database writes it (for `--hash`). */
export interface ExactTableReader extends TableReader {
  rowTexts(pks: unknown[], columns: Array<{ column: string; kind: ScalarKind }>): Promise<Map<string, { revision: number; texts: Array<string | null> }>>
}

/** One item of diff-master's output: `[pk, revision]`, or `[pk, revision, hash]` after `--hash`. */
export type MasterItem = [WirePk, number] | [WirePk, number, string]

/** One batch of diff-replica: of `checked` master pks, those the replica lacks or holds at another revision. */
export interface DiffReplicaBatch {
  line: number
  checked: number
  /** Pks to re-sync, as they came from the master (their JSON type kept). */
  drifted: WirePk[]
  missing: number
  stale: number
  /** At the same revision but with other values (only with `diff-master --hash`). */
  changed: number
}

/**
 * The replica column of each hashed key. A replica that does not store every hashed key cannot compute
 * the master's hash: refused, naming the keys it lacks and the option that fixes it.
 */
export function hashedColumns(target: TableTarget, keys: HashedKeys): TargetColumn[] {
  const missing = keys.filter(([k]) => !target.byKey.has(k)).map(([k]) => k)
  if (missing.length) {
    const stored = keys.filter(([k]) => target.byKey.has(k)).map(([k]) => k)
    throw new ConfigError(
      `diff-master hashed the keys ${missing.map((k) => `'${k}'`).join(', ')}, which this replica does not store (table ${target.table}), so it cannot compute the same hash. ` +
        (stored.length ? `Run diff-master with --hash-keys ${stored.join(',')} (the hashed keys this replica stores).` : 'Run diff-master without --hash.'),
    )
  }
  return keys.map(([k]) => target.byKey.get(k)!)
}

/** Wire pks decoded to the replica pk's column type; a pk of the wrong type fails the whole line. */
export function decodeReplicaPks(target: TableTarget, line: number, pks: WirePk[]): unknown[] {
  try {
    return pks.map((pk) => decodeValue(target.pk.kind, pk, target.pk.field))
  } catch (e) {
    throw new LineError(line, `${(e as Error).message} (the primary key of ${target.table} is ${target.pk.kind}; is this the output for cqrs_id '${target.cqrsId}'?)`)
  }
}

/** A replica pk as it goes on the wire. */
export const replicaWirePk = (target: TableTarget, pk: unknown): WirePk => encodeValue(target.pk.kind, pk) as WirePk

/**
 * Stage 2 of the diff pipe: for each batch of master `[pk, revision]` pairs, look the pks up in the
 * replica table (one query per batch) and keep those missing or at a different revision. With `hash`
 * (the spec line of `diff-master --hash`), a row at the same revision whose values hash differently is
 * kept too; the replica's values are read as its database writes them (raw SQL text, not Prisma's Dates).
 */
export async function* diffReplica(o: { reader: TableReader; target: TableTarget; batches: AsyncIterable<Parsed<MasterItem[]>>; hash?: HashedKeys }): AsyncIterable<DiffReplicaBatch | LineError> {
  const hashed = o.hash ? { keys: o.hash, columns: hashedColumns(o.target, o.hash), reader: exactReader(o.reader) } : null
  for await (const b of decodedBatches(o.batches, (line, items) => decodeReplicaPks(o.target, line, items.map(([pk]) => pk)))) {
    if (b instanceof LineError) {
      yield b
      continue
    }
    const { pks } = b
    const out: DiffReplicaBatch = { line: b.line, checked: pks.length, drifted: [], missing: 0, stale: 0, changed: 0 }
    if (hashed && b.items.some((it) => it.length !== 3)) {
      yield new LineError(b.line, 'an item has no hash, but the spec line said diff-master --hash; is this line from another diff-master run?')
      continue
    }
    let stored = new Map<string, { revision: number; hash?: string }>()
    if (pks.length) stored = hashed ? await replicaHashes(hashed, pks) : new Map([...(await o.reader.revisions(pks))].map(([k, revision]) => [k, { revision }]))
    b.items.forEach(([pk, revision, hash], i) => {
      const have = stored.get(String(pks[i]))
      if (have?.revision === revision && (hash === undefined || have.hash === hash)) return
      if (have === undefined) out.missing++
      else if (have.revision !== revision) out.stale++
      else out.changed++
      out.drifted.push(pk)
    })
    yield out
  }
}

function exactReader(reader: TableReader): ExactTableReader {
  if (typeof (reader as Partial<ExactTableReader>).rowTexts !== 'function') throw new ConfigError('this replica reader cannot read column text, which diff-master --hash needs; run the diff without --hash')
  return reader as ExactTableReader
}

/** Revision and row hash of each stored pk, from the columns' text (JSON parsed exactly, so its numbers keep their digits). */
async function replicaHashes(h: { keys: HashedKeys; columns: TargetColumn[]; reader: ExactTableReader }, pks: unknown[]): Promise<Map<string, { revision: number; hash: string }>> {
  const rows = await h.reader.rowTexts(pks, h.columns)
  const index = new Map(h.keys.map(([k], i) => [k, i]))
  const out = new Map<string, { revision: number; hash: string }>()
  for (const [pk, r] of rows) {
    const value = (key: string) => {
      const i = index.get(key)!
      const t = r.texts[i]
      if (t === null || (h.columns[i].kind !== 'Json' && h.keys[i][1] !== 'Json')) return t
      try {
        return parseJson(t)
      } catch {
        return t // JSON kept as text that is not JSON: hashed as the text
      }
    }
    out.set(pk, { revision: r.revision, hash: rowHash(h.keys, value) })
  }
  return out
}

/** Stage 1 of the deleted-diff pipe: every replica pk, one array per page in pk order. */
export async function* replicaPks(o: { reader: TableReader; target: TableTarget; batchSize: number }): AsyncIterable<WirePk[]> {
  for await (const page of o.reader.keyPages(o.batchSize)) yield page.map((k) => replicaWirePk(o.target, k.pk))
}
