/**
 * Test databases: each call makes a fresh database (PostgreSQL, MariaDB) or file (SQLite), applies
 * the library's tables (prisma/cqrs.<dialect>.sql) and the test models' (prisma/test/<dialect>/schema.sql), and drops it afterwards.
 * URLs come from env with the local defaults; there is no `prisma migrate` here.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { adapterFromUrl, mariadbConfig } from '../../src/prisma/adapter-from-url.js'
import { serviceUrl } from './test-services.js'

export type Dialect = 'postgresql' | 'mysql' | 'sqlite'
export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const PG_URL = serviceUrl('postgresql')
export const MYSQL_URL = serviceUrl('mysql')
export const AMQP_URL = serviceUrl('rabbitmq')
export const DIALECTS: Dialect[] = (process.env.CQRS_TEST_DIALECTS?.split(',') as Dialect[] | undefined) ?? ['postgresql', 'mysql', 'sqlite']

/** The library's own URL-to-settings rule (adapterFromUrl). */
export { mariadbConfig }

export interface TestDatabase {
  dialect: Dialect
  url: string
  /** A new PrismaClient (generated for this dialect) on this database. */
  /** A Prisma client on the database; `url` another URL of it (connection options). */
  client(options?: { poolSize?: number; url?: string }): Promise<any>
  /** Run SQL statements with the plain driver (no Prisma), e.g. to make a replica drift. */
  exec(sql: string): Promise<void>
  /** Query with the plain driver. */
  query<T = Record<string, unknown>>(sql: string): Promise<T[]>
  drop(): Promise<void>
}

const withPath = (url: string, db: string) => {
  const u = new URL(url)
  u.pathname = `/${db}`
  return u.toString()
}

/** The library's own tables (the SQL the package ships), then the test models' tables. */
export const schemaSql = (dialect: Dialect) => ['prisma/cqrs.' + dialect + '.sql', `prisma/test/${dialect}/schema.sql`].map((f) => readFileSync(join(ROOT, f), 'utf8')).join('\n')

export async function createTestDatabase(dialect: Dialect, label = 't'): Promise<TestDatabase> {
  const name = `cqrs_${label}_${randomBytes(4).toString('hex')}`.toLowerCase()
  let url: string
  let run: (sql: string) => Promise<any[]>
  let drop: () => Promise<void>
  if (dialect === 'postgresql') {
    const pg = (await import('pg')).default
    const admin = new pg.Client({ connectionString: PG_URL })
    await admin.connect()
    await admin.query(`CREATE DATABASE ${name}`)
    await admin.end()
    url = withPath(PG_URL, name)
    const conn = new pg.Client({ connectionString: url })
    await conn.connect()
    run = async (sql) => (await conn.query(sql)).rows
    drop = async () => {
      await conn.end()
      const a = new pg.Client({ connectionString: PG_URL })
      await a.connect()
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await a.end()
    }
  } else if (dialect === 'mysql') {
    const mariadb = (await import('mariadb')).default
    const { database: _, ...server } = mariadbConfig(MYSQL_URL)
    const cfg = { ...server, multipleStatements: true, bigIntAsNumber: false }
    const admin = await mariadb.createConnection(cfg)
    await admin.query(`CREATE DATABASE ${name}`)
    await admin.end()
    url = withPath(MYSQL_URL, name)
    const conn = await mariadb.createConnection({ ...cfg, database: name })
    run = async (sql) => {
      const r = await conn.query(sql)
      return Array.isArray(r) ? r : []
    }
    drop = async () => {
      await conn.end()
      const a = await mariadb.createConnection(cfg)
      await a.query(`DROP DATABASE IF EXISTS ${name}`)
      await a.end()
    }
  } else {
    const Database = (await import('better-sqlite3')).default
    const dir = join(ROOT, '.tmp')
    mkdirSync(dir, { recursive: true })
    const file = join(dir, `${name}.db`)
    const db = new Database(file)
    db.pragma('journal_mode = WAL')
    db.pragma('busy_timeout = 10000')
    url = `file:${file}`
    run = async (sql) => {
      const trimmed = sql.trim()
      if (/^select/i.test(trimmed)) return db.prepare(trimmed).all()
      db.exec(sql)
      return []
    }
    drop = async () => {
      db.close()
      for (const s of ['', '-wal', '-shm', '-journal']) rmSync(file + s, { force: true })
    }
  }
  await run(schemaSql(dialect))
  const clients: any[] = []
  return {
    dialect,
    url,
    async client(options) {
      const { PrismaClient } = await import(`../../prisma/generated/${dialect}/client.ts`)
      const c = new PrismaClient({ adapter: await adapterFromUrl(options?.url ?? url, options) })
      clients.push(c)
      return c
    },
    exec: async (sql) => void (await run(sql)),
    query: (sql) => run(sql),
    async drop() {
      await Promise.allSettled(clients.map((c) => c.$disconnect()))
      await drop()
    },
  }
}
