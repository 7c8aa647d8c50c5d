/** What a master's database says about its events: the outbox's size, and every event it committed. */
import type { TestDatabase } from './databases.js'

/** Rows waiting in the outbox. */
export const outboxCount = async (db: TestDatabase): Promise<number> => Number((await db.query<{ n: number | bigint }>('SELECT COUNT(*) AS n FROM cqrs_outbox'))[0].n)

/** Every event the database says was committed: `pk:revision:SAVE` for revisions 0..cqrs_revision of every author row. */
export async function committedEvents(db: Pick<TestDatabase, 'query'>): Promise<Set<string>> {
  const rows = await db.query<{ id: number | bigint; cqrs_revision: number | bigint }>('SELECT id, cqrs_revision FROM author')
  const out = new Set<string>()
  for (const r of rows) for (let rev = 0; rev <= Number(r.cqrs_revision); rev++) out.add(`${r.id}:${rev}:SAVE`)
  return out
}
