import type { CaptureContext } from '../config/master-options.js'
import { decodeValue, encodeValue } from '../core/codec.js'
import { LineError } from '../core/dump-format.js'
import { decodedBatches, type Parsed, type WirePk } from '../core/diff-format.js'
import { ConfigError } from '../core/errors.js'
import { rowHash, type HashedKeys } from '../core/row-hash.js'
import { replicated } from './dump.js'
import { instanceData } from './event-builder.js'
import type { ModelPlan } from './model-plan.js'
import type { RowSource } from './row-source.js'

/** A master row's pk as it goes on the wire (numbers for int and bigint, strings for uuid and text). */
export const wirePk = (plan: ModelPlan, row: Record<string, unknown>): WirePk => encodeValue(plan.pkKind, row[plan.pkField]) as WirePk

/**
 * Stage 1 of the diff pipe: every replicated master row as `[pk, revision]`, one array per page in pk
 * order (keyset pagination, constant memory). Only pk and revision are read, unless the model has a
 * `filter`, which needs whole rows.
 */
export async function* diffMaster(o: { source: RowSource; plan: ModelPlan; batchSize: number }): AsyncIterable<Array<[WirePk, number]>> {
  const { plan } = o
  for await (const page of o.source.pages({ batchSize: o.batchSize, keysOnly: !plan.filter })) {
    const out: Array<[WirePk, number]> = []
    for (const row of page) if (replicated(plan, row)) out.push([wirePk(plan, row), Number(row[plan.revisionField])])
    yield out
  }
}

/**
 * The keys `diff-master --hash` covers: every wire key of the model, or `only` (in that order). A
 * model with a serializer is refused: its keys' kinds are not known, so a replica could not
 * canonicalise its values the same way.
 */
export function hashedKeys(plan: ModelPlan, only?: string[]): HashedKeys {
  if (plan.serializer) throw new ConfigError(`diff-master --hash cannot hash ${plan.model}: its instance_data comes from a serializer, whose keys' types are unknown. Run the diff without --hash.`)
  const all: HashedKeys = plan.wire.map((w) => [w.key, w.kind])
  if (!only) return all
  const byKey = new Map(all)
  const unknown = only.filter((k) => !byKey.has(k))
  if (unknown.length) throw new ConfigError(`--hash-keys names ${unknown.map((k) => `'${k}'`).join(', ')}, which ${plan.cqrsId} does not send; its keys are ${all.map(([k]) => k).join(', ')}`)
  return only.map((k) => [k, byKey.get(k)!])
}

/**
 * Stage 1 with `--hash`: `[pk, revision, hash]` per replicated row, the hash over the row's wire
 * values (the same `instance_data` a SYNC would carry, read exactly) of `keys`.
 */
export async function* diffMasterHashed(o: { source: RowSource; plan: ModelPlan; batchSize: number; keys: HashedKeys; ctx: CaptureContext }): AsyncIterable<Array<[WirePk, number, string]>> {
  const { plan } = o
  for await (const page of o.source.pages({ batchSize: o.batchSize })) {
    const out: Array<[WirePk, number, string]> = []
    for (const row of page) {
      if (!replicated(plan, row)) continue
      const data = await instanceData(plan, row, o.ctx)
      out.push([wirePk(plan, row), Number(row[plan.revisionField]), rowHash(o.keys, (key) => data[key])])
    }
    yield out
  }
}

/** Wire pks of a batch decoded to the master pk's type; a pk of the wrong type fails the whole line. */
export function decodePks(plan: ModelPlan, line: number, pks: WirePk[]): unknown[] {
  try {
    return pks.map((pk) => decodeValue(plan.pkKind, pk, plan.pkField))
  } catch (e) {
    throw new LineError(line, `${(e as Error).message} (the primary key of ${plan.model} is ${plan.pkKind}; is this the output for cqrs_id '${plan.cqrsId}'?)`)
  }
}

/** One batch of deleted-diff-master: of `checked` replica pks, those the master does not have. */
export interface DeletedDiffBatch {
  line: number
  checked: number
  missing: WirePk[]
}

/**
 * Stage 2 of the deleted-diff pipe: of each batch of replica pks, keep those the master has no
 * (replicated) row for. The pks keep the JSON type they came with.
 */
export async function* deletedDiffMaster(o: { source: RowSource; plan: ModelPlan; batches: AsyncIterable<Parsed<WirePk[]>> }): AsyncIterable<DeletedDiffBatch | LineError> {
  const { plan } = o
  for await (const b of decodedBatches(o.batches, (line, items) => decodePks(plan, line, items))) {
    if (b instanceof LineError) {
      yield b
      continue
    }
    const { pks } = b
    const rows = await o.source.byPks(pks, { keysOnly: !plan.filter })
    const present = new Set(rows.filter((r) => replicated(plan, r)).map((r) => String(r[plan.pkField])))
    yield { line: b.line, checked: pks.length, missing: b.items.filter((_, i) => !present.has(String(pks[i]))) }
  }
}
