/**
 * A PostgreSQL cluster of a test's own (Debian's pg_createcluster, on a free port, trust auth), so the
 * test can stop and start it without touching the shared server. Needs root (or the postgres user)
 * and PostgreSQL 15's server packages, as the CI image has. `drop()` stops and removes it.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { appendFileSync, existsSync, readdirSync, readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import pg from 'pg'
import { schemaSql } from '../support/databases.js'

const run = promisify(execFile)
const VERSION = process.env.CQRS_TEST_PG_VERSION ?? (existsSync('/etc/postgresql') ? readdirSync('/etc/postgresql').sort().at(-1) : undefined) ?? '15'

/**
 * Whether this machine can make clusters (Debian's postgresql-common, as CI has). Where it cannot
 * (PostgreSQL in Docker), the tests that need one are skipped, and say so.
 */
export const canCreateClusters = ['/usr/bin/pg_createcluster', '/usr/bin/pg_ctlcluster', '/usr/bin/pg_dropcluster'].every((f) => existsSync(f))

export interface OwnPostgres {
  /** URL of the `replica` database (the test schema applied). */
  url: string
  start(): Promise<void>
  /**
   * Begin a smart shutdown and hold it: sessions are terminated (57P01), new connections refused
   * with "the database system is shutting down" (57P03) until `finish()` lets the server stop.
   */
  shuttingDown(): Promise<{ finish(): Promise<void> }>
  drop(): Promise<void>
}

async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve()))
  const { port } = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/**
 * `listen`: addresses to listen on besides 127.0.0.1, whose clients (`hosts`, CIDR) are trusted too;
 * e.g. a veth's, for a client in a network namespace.
 */
export async function ownPostgres(label: string, options: { listen?: string[]; hosts?: string[] } = {}): Promise<OwnPostgres> {
  const name = `cqrs_${label}_${randomBytes(3).toString('hex')}`
  const port = await freePort()
  // Durability is not under test: fsync off keeps the cluster's start and stop quick.
  // (pg_createcluster quotes a list itself; a lone address would go unquoted, which PostgreSQL refuses.)
  const listen = options.listen?.length ? ['-o', `listen_addresses=localhost,${options.listen.join(',')}`] : []
  await run('pg_createcluster', [VERSION, name, '-p', String(port), '-o', 'fsync=off', '-o', 'max_connections=40', '-o', 'shared_buffers=16MB', ...listen, '--', '--auth=trust'])
  for (const cidr of options.hosts ?? []) appendFileSync(`/etc/postgresql/${VERSION}/${name}/pg_hba.conf`, `host all all ${cidr} trust\n`)
  const cluster = {
    start: async () => void (await run('pg_ctlcluster', ['--skip-systemctl-redirect', VERSION, name, 'start'])),
    drop: async () => void (await run('pg_dropcluster', ['--stop', VERSION, name])),
  }
  try {
    await cluster.start()
    const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' })
    await admin.connect()
    await admin.query('CREATE DATABASE replica')
    await admin.end()
    const url = `postgresql://postgres@127.0.0.1:${port}/replica`
    const conn = new pg.Client({ connectionString: url })
    await conn.connect()
    await conn.query(schemaSql('postgresql'))
    await conn.end()
    const shuttingDown = async () => {
      // This session keeps the smart shutdown from completing, for as long as the test wants.
      const holder = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' })
      await holder.connect()
      holder.on('error', () => {})
      const [{ dir }] = (await holder.query<{ dir: string }>("SELECT current_setting('data_directory') AS dir")).rows
      const postmaster = Number(readFileSync(`${dir}/postmaster.pid`, 'utf8').split('\n')[0])
      process.kill(postmaster, 'SIGTERM') // smart shutdown
      await holder.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`)
      return {
        async finish() {
          await holder.end().catch(() => {})
          // The server stops once its last session is gone; the test cannot be told when.
          for (;;) {
            const status = await run('pg_ctlcluster', ['--skip-systemctl-redirect', VERSION, name, 'status']).then(() => 'running', () => 'stopped')
            if (status === 'stopped') return
            await new Promise((r) => setTimeout(r, 100))
          }
        },
      }
    }
    return { url, ...cluster, shuttingDown }
  } catch (e) {
    await cluster.drop().catch(() => {})
    throw e
  }
}
