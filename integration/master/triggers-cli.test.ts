/**
 * The default setup as a user meets it: `capture: 'trigger'` refuses to write until the triggers are
 * in the database, and `cqrs triggers --migration` (the built bin, as a subprocess) writes them as a
 * Prisma migration folder which, applied as `prisma migrate` applies it (the whole script at once),
 * makes every write of the default client an event. On each database.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import { cqrsMaster } from '../../src/prisma/cqrs-master.js'
import { cqrs } from '../support/cli.js'
import { CollectorTransport } from '../support/collector.js'
import { createTestDatabase, DIALECTS } from '../support/databases.js'

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

describe.each(DIALECTS)('cqrs triggers --migration on %s', (dialect) => {
  it('writes a migration that the default master needs, and after it every write is captured', async () => {
    const db = await createTestDatabase(dialect, 'trgm')
    const transport = new CollectorTransport()
    let prisma: any
    try {
      const suffix = `_m${Math.random().toString(36).slice(2, 8)}`
      // The test config's master section (integration/support/test-config.ts) names these models.
      const prismaBase = await db.client()
      prisma = prismaBase.$extends(cqrsMaster({ transport, logger: silentLogger, relay: { enabled: false }, models: { author: { cqrsId: `author${suffix}` } } }))
      await expect(prisma.author.create({ data: { name: 'too early', externalId: 'x' } })).rejects.toThrow(/needs the capture triggers.*cqrs triggers --migration/s)
      expect(await db.query('SELECT id FROM author')).toEqual([])

      const migrations = mkdtempSync(join(tmpdir(), 'cqrs-migrations-'))
      dirs.push(migrations)
      const run = await cqrs(['triggers', '--migration', migrations], { CQRS_TEST_DIALECT: dialect, CQRS_MASTER_URL: db.url, CQRS_ID_SUFFIX: suffix })
      expect(run.code, run.stderr).toBe(0)
      const file = run.stdout.trim()
      expect(readdirSync(migrations)).toEqual([basename(dirname(file))])
      expect(basename(dirname(file))).toMatch(/^\d{14}_cqrs_triggers$/)
      expect(basename(file)).toBe('migration.sql')
      expect(run.stderr).toMatch(/prisma migrate/)
      const script = readFileSync(file, 'utf8')
      // On PostgreSQL with the outbox's wake-up trigger, by which commits wake a `cqrs relay`.
      expect(/CREATE CONSTRAINT TRIGGER cqrs_outbox_wake\b/.test(script), 'the wake-up trigger').toBe(dialect === 'postgresql')
      await db.exec(script)

      // A client made after the migration (the check runs once per client, on its first write).
      const after = prismaBase.$extends(cqrsMaster({ transport, logger: silentLogger, relay: { enabled: false }, models: { author: { cqrsId: `author${suffix}` } } }))
      const a = await after.author.create({ data: { name: 'one', externalId: 'x' } })
      await after.author.update({ where: { id: a.id }, data: { name: 'two' } })
      await after.$executeRawUnsafe(`UPDATE author SET name = 'three' WHERE id = ${a.id}`)
      await after.author.delete({ where: { id: a.id } })
      await after.$cqrs.flush()
      await after.$cqrs.close()
      const events = transport.bodies().map((b) => [b.signal_type, b.cqrs_id, b.instance_data?.name ?? null, b.instance_data?.cqrs_revision ?? null])
      // SQLite's triggers cannot raise the revision of a raw-SQL update (README).
      const rawRevision = dialect === 'sqlite' ? 1 : 2
      expect(events).toEqual([
        ['SAVE', `author${suffix}`, 'one', 0],
        ['SAVE', `author${suffix}`, 'two', 1],
        ['SAVE', `author${suffix}`, 'three', rawRevision],
        ['DELETE', `author${suffix}`, null, rawRevision],
      ])
    } finally {
      await prisma?.$cqrs.close()
      await db.drop()
    }
  })
})

describe.each(DIALECTS)('cqrs triggers --wake-only on %s', (dialect) => {
  it("prints (or installs) the outbox's wake-up trigger alone on PostgreSQL, and says it is for PostgreSQL elsewhere", async () => {
    const db = await createTestDatabase(dialect, 'trgw')
    try {
      const env = { CQRS_TEST_DIALECT: dialect, CQRS_MASTER_URL: db.url }
      const printed = await cqrs(['triggers', '--wake-only'], env)
      expect(printed.code, printed.stderr).toBe(0)
      if (dialect !== 'postgresql') {
        expect(printed.stderr).toMatch(/wake-up trigger is for PostgreSQL only; on this database the relay polls/)
        expect(printed.stdout, 'no capture triggers either').not.toMatch(/TRIGGER/)
        return
      }
      expect(printed.stdout).toMatch(/CREATE CONSTRAINT TRIGGER cqrs_outbox_wake AFTER INSERT ON "cqrs_outbox" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW/)
      expect(printed.stdout, 'no capture triggers, no NOTIFY trigger').not.toMatch(/cqrs_author|cqrs_outbox_notify/)
      const applied = await cqrs(['triggers', '--wake-only', '--apply'], env)
      expect(applied.code, applied.stderr).toBe(0)
      expect(applied.stderr).toMatch(/installed the outbox wake-up trigger/)
      expect(await db.query("SELECT tgname::text AS name, tgdeferrable AS deferrable, tginitdeferred AS deferred FROM pg_trigger WHERE tgrelid = 'cqrs_outbox'::regclass")).toEqual([{ name: 'cqrs_outbox_wake', deferrable: true, deferred: true }])
      const both = await cqrs(['triggers', '--wake-only', '--notify'], env)
      expect(both.code).not.toBe(0)
      expect(both.stderr).toMatch(/--wake-only installs the wake-up trigger alone/)
    } finally {
      await db.drop()
    }
  })
})
