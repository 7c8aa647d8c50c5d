import type { TestDatabase } from './databases.js'

/** Columns compared between a master table and its replica twin (the mapped fields and cqrs_revision). */
export const AUTHOR_COLUMNS = ['id', 'name', 'birth_date', 'rating', 'balance', 'last_seen', 'is_active', 'nickname', 'external_id', 'cqrs_revision', 'cqrs_updated']

const norm = (v: unknown): unknown => {
  if (v === null || v === undefined) return null
  if (v instanceof Date) return v.toISOString()
  if (typeof v === 'bigint') return v.toString()
  if (typeof v === 'boolean') return v ? 1 : 0
  if (typeof v === 'number') return Number.isInteger(v) ? v : Number(v.toFixed(6))
  if (typeof v === 'string') {
    // Decimals come back as strings from some drivers, timestamps as text from SQLite.
    if (/^-?\d+\.\d+$/.test(v)) return Number(Number(v).toFixed(6))
    if (/^\d{4}-\d\d-\d\d[T ]\d\d:\d\d/.test(v)) return new Date(v.replace(' ', 'T').replace(/(\+00:?00)?$/, 'Z').replace('ZZ', 'Z')).toISOString()
    return v
  }
  return v
}

/** Rows of `table` as comparable objects keyed by id. */
export async function snapshot(db: TestDatabase, table: string, columns = AUTHOR_COLUMNS): Promise<Map<string, Record<string, unknown>>> {
  const q = db.dialect === 'mysql' ? (c: string) => `\`${c}\`` : (c: string) => `"${c}"`
  const rows = await db.query<Record<string, unknown>>(`SELECT ${columns.map(q).join(', ')} FROM ${table} ORDER BY id`)
  return new Map(rows.map((r) => [String(r.id), Object.fromEntries(columns.map((c) => [c, norm(r[c])]))]))
}

/** Differences between master and replica: missing, extra and differing rows (empty = equal). */
export async function tableDiff(master: TestDatabase, masterTable: string, replica: TestDatabase, replicaTable: string, columns = AUTHOR_COLUMNS): Promise<string[]> {
  const [m, r] = await Promise.all([snapshot(master, masterTable, columns), snapshot(replica, replicaTable, columns)])
  const out: string[] = []
  for (const [id, row] of m) {
    const other = r.get(id)
    if (!other) out.push(`missing ${id}`)
    else if (JSON.stringify(row) !== JSON.stringify(other)) out.push(`differs ${id}: master ${JSON.stringify(row)} replica ${JSON.stringify(other)}`)
  }
  for (const id of r.keys()) if (!m.has(id)) out.push(`extra ${id}`)
  return out
}

/** Wait until `check()` returns an empty list (re-checking as the replica applies), or fail with the last diff. */
export async function eventually(check: () => Promise<string[]>, timeoutMs = 30_000, what = 'replica to equal master'): Promise<void> {
  const until = Date.now() + timeoutMs
  let last: string[] = []
  let wait = 20
  while (Date.now() < until) {
    last = await check()
    if (last.length === 0) return
    await new Promise((r) => setTimeout(r, wait))
    wait = Math.min(wait * 2, 250)
  }
  throw new Error(`timed out waiting for ${what}; ${last.length} difference(s):\n${last.slice(0, 20).join('\n')}`)
}
