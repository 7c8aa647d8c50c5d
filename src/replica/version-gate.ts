/**
 * The version gate, the one rule of which message may change a replica row. Every replica path uses
 * it: the consumer's batch statements ({@link storedMayBeReplaced} in the SQL), row hooks
 * ({@link hookAction}), bulk-load's COPY upsert, and the tools that apply through the store.
 *
 * - SAVE replaces a stored row only with a higher revision; SYNC unless older; a forced SYNC always.
 * - DELETE removes a stored row whose revision is not higher, and always leaves a tombstone.
 * - A tombstone with a revision at least as high blocks a SAVE or SYNC (not a forced one).
 * - Of several ops for one pk in a batch, {@link newest} decides.
 */
import type { ApplyOp, ApplyResult } from './apply-op.js'
import type { Tombstone } from './replica-store.js'

/** How a SAVE or SYNC may replace a stored row: `newer` (SAVE), `notOlder` (SYNC), `always` (forced SYNC). */
export type Gate = 'newer' | 'notOlder' | 'always'

/**
 * Of several ops for one pk, the one that decides the final state: the highest revision; at equal
 * revision a DELETE (the delete of revision r comes after its save); a forced SYNC wins outright.
 */
export function newest(a: ApplyOp, b: ApplyOp): ApplyOp {
  if (a.force !== b.force) return a.force ? a : b
  if (a.revision !== b.revision) return a.revision > b.revision ? a : b
  if (a.signal === 'DELETE' || b.signal === 'DELETE') return a.signal === 'DELETE' ? a : b
  return b
}

/** The op that decides each pk's final state ({@link newest}), in first-seen order. */
export function winners(ops: Iterable<ApplyOp>): ApplyOp[] {
  const byPk = new Map<string, ApplyOp>()
  for (const op of ops) {
    const prev = byPk.get(op.pkKey)
    byPk.set(op.pkKey, prev ? newest(prev, op) : op)
  }
  return [...byPk.values()]
}

/** The gate of a SAVE or SYNC, or null when the pk's tombstone blocks it. */
export function gateOf(op: ApplyOp, tombstone: Tombstone | undefined): Gate | null {
  if (tombstone && tombstone.revision >= op.revision && !op.force) return null
  return op.force ? 'always' : op.signal === 'SYNC' ? 'notOlder' : 'newer'
}

/**
 * The gate in SQL: `stored <op> incoming` must hold for the row to be replaced (`always` has no
 * condition). A DELETE reaches a stored row under `notOlder`'s comparison.
 */
export function storedMayBeReplaced(gate: Exclude<Gate, 'always'>): '<' | '<=' {
  return gate === 'newer' ? '<' : '<='
}

/** The tombstone rule in SQL: a tombstone at revision `tomb` blocks a SAVE or SYNC at `incoming`. */
export function tombstoneBlocksSql(tomb: string, incoming: string): string {
  return `${tomb} >= ${incoming}`
}

/**
 * Whether the gate lets a SAVE or SYNC in where its pk has no stored row and no tombstone: always.
 * bulk-load's direct COPY on PostgreSQL relies on this, and on nothing else, to skip the gated upsert
 * for a batch whose pks have neither (a unit test pins it for every signal and revision).
 */
export function gateOpenWithoutHistory(op: ApplyOp): boolean {
  const gate = gateOf(op, undefined)
  return gate !== null && passes(gate, null, op.revision)
}

/** The gate in JavaScript, for a stored revision (null: no row). */
function passes(gate: Gate, stored: number | null, incoming: number): boolean {
  if (stored === null || gate === 'always') return true
  return gate === 'newer' ? stored < incoming : stored <= incoming
}

/**
 * What a table handler with row hooks does with an op, given the stored revision and the tombstone
 * (read with the pk locked). A DELETE writes its tombstone whatever this says.
 */
export function hookAction(op: ApplyOp, stored: number | null, tombstone: Tombstone | undefined): 'create' | 'update' | 'delete' | 'none' {
  if (op.signal === 'DELETE') return stored !== null && passes('notOlder', stored, op.revision) ? 'delete' : 'none'
  const gate = gateOf(op, tombstone)
  if (!gate) return 'none'
  if (stored === null) return 'create'
  return passes(gate, stored, op.revision) ? 'update' : 'none'
}

/**
 * Apply a batch's ops: the newest per pk in one call of `apply`; if that call fails, in halves down to
 * single pks, so only the bad ones fail. Returns each op's result: an older duplicate is `skipped`; an op whose pk failed
 * on its own gets the error. `rethrow` picks errors that end the whole batch instead (a lost database
 * during shutdown).
 */
export async function applyGated(ops: ApplyOp[], apply: (ops: ApplyOp[]) => Promise<ApplyResult[]>, rethrow: (e: unknown) => boolean = () => false): Promise<Map<ApplyOp, ApplyResult | Error>> {
  const decisive = winners(ops)
  const byPk = new Map<string, ApplyResult | Error>()
  // A failed call is split in halves until each failing op stands alone with its own error: k poison
  // ops among n cost about 2k·log2(n) calls instead of n. (One op per pk, so the halves are independent.)
  const run = async (part: ApplyOp[]): Promise<void> => {
    try {
      const results = await apply(part)
      part.forEach((op, i) => byPk.set(op.pkKey, results[i]))
    } catch (e) {
      if (rethrow(e)) throw e
      if (part.length === 1) return void byPk.set(part[0].pkKey, e as Error)
      const half = Math.ceil(part.length / 2)
      await run(part.slice(0, half))
      await run(part.slice(half))
    }
  }
  await run(decisive)
  const out = new Map<ApplyOp, ApplyResult | Error>()
  const isWinner = new Set(decisive)
  for (const op of ops) {
    const r = byPk.get(op.pkKey)!
    out.set(op, isWinner.has(op) || r instanceof Error ? r : 'skipped')
  }
  return out
}
