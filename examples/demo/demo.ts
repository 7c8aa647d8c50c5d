/**
 * `npm run demo`: a master and a replica on two SQLite files, with the in-memory broker (or RabbitMQ
 * when AMQP_URL is set). It writes on the master, shows the rows arriving at the replica, and ends
 * with a diff of the two tables. No services needed.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { silentLogger } from '../../src/core/logger.js'
import { adapterFromUrl } from '../../src/prisma/adapter-from-url.js'
import { cqrsMaster, installCaptureTriggers } from '../../src/prisma/cqrs-master.js'
import { cqrsReplica } from '../../src/prisma/cqrs-replica.js'
import { memory, MemoryBroker } from '../../src/transport/memory/index.js'
import type { Transport } from '../../src/transport/types.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const dir = join(root, '.tmp', 'demo')
const { PrismaClient } = await import('../../prisma/generated/sqlite/client.js')

function freshDatabase(name: string): string {
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${name}.db`)
  for (const s of ['', '-wal', '-shm', '-journal']) rmSync(file + s, { force: true })
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  for (const f of ['prisma/cqrs.sqlite.sql', 'prisma/test/sqlite/schema.sql']) db.exec(readFileSync(join(root, f), 'utf8'))
  db.close()
  return `file:${file}`
}

const say = (s: string) => process.stdout.write(`${s}\n`)
const queue = 'demo_payments'
const models = { cqrsIds: ['account'] }

// The broker: in-memory by default, RabbitMQ when AMQP_URL is set.
let masterTransport: Transport
let replicaTransport: Transport
if (process.env.AMQP_URL) {
  const { rabbitmq } = await import('../../src/transport/rabbitmq/index.js')
  masterTransport = rabbitmq({ url: process.env.AMQP_URL, logger: silentLogger })
  replicaTransport = rabbitmq({ url: process.env.AMQP_URL, logger: silentLogger })
} else {
  const broker = new MemoryBroker()
  masterTransport = memory({ broker, queues: [{ queue, ...models }], logger: silentLogger })
  replicaTransport = memory({ broker, logger: silentLogger })
}
say(`cqrs-sync demo: master and replica on two SQLite files in .tmp/demo, broker: ${process.env.AMQP_URL ? 'RabbitMQ' : 'in-memory'}\n`)

// The accounts service (master) owns Author rows, published as cqrs_id 'account'.
// The default capture is by database triggers; an app adds them with its migrations
// (`npx cqrs triggers --migration`); this demo's fresh database gets them here.
const masterOptions = { transport: masterTransport, logger: silentLogger, models: { author: { cqrsId: 'account', trackedFields: ['name'] } } }
const masterDb = new PrismaClient({ adapter: await adapterFromUrl(freshDatabase('master')) })
await installCaptureTriggers(masterDb, masterOptions)
const master = masterDb.$extends(cqrsMaster(masterOptions))
// The payments service (replica) keeps AuthorRef up to date.
const replicaDb = new PrismaClient({ adapter: await adapterFromUrl(freshDatabase('replica')) })
const replica = cqrsReplica({ prisma: replicaDb, transport: replicaTransport, queue, logger: silentLogger, handlers: { account: { model: 'authorRef' } } })
await replica.start()

/** Publish what the master committed, wait until the replica applied it, and show the replica table. */
async function settle(title: string) {
  await master.$cqrs.flush()
  const target = await master.author.findMany({ select: { id: true, cqrsRevision: true } })
  const until = Date.now() + 10_000
  for (;;) {
    const rows = await replicaDb.authorRef.findMany({ select: { id: true, cqrsRevision: true } })
    const same = rows.length === target.length && target.every((t: any) => rows.some((r: any) => r.id === t.id && r.cqrsRevision === t.cqrsRevision))
    if (same || Date.now() > until) break
    await new Promise((r) => setTimeout(r, 10))
  }
  const rows = await replicaDb.authorRef.findMany({ orderBy: { id: 'asc' } })
  say(`-- ${title}`)
  say(`   replica author_ref: ${rows.length ? rows.map((r: any) => `#${r.id} ${r.name} (rev ${r.cqrsRevision})`).join(', ') : '(empty)'}`)
}

const ann = await master.author.create({ data: { name: 'Ann', externalId: 'acc-1', balance: '100.00' } })
const bob = await master.author.create({ data: { name: 'Bob', externalId: 'acc-2' } })
await master.author.createMany({ data: [{ name: 'Cy', externalId: 'acc-3' }, { name: 'Di', externalId: 'acc-4' }] })
await settle('master created Ann, Bob, Cy and Di')

await master.author.update({ where: { id: ann.id }, data: { name: 'Pavel' } })
await master.author.updateMany({ where: { name: { in: ['Cy', 'Di'] } }, data: { rating: 5 } })
await settle('master renamed Ann to Pavel and rated Cy and Di (each update raises the revision)')

await master.author.delete({ where: { id: bob.id } })
await settle('master deleted Bob (the replica keeps a tombstone so a late message cannot bring him back)')

await master
  .$transaction(async (tx: any) => {
    await tx.author.create({ data: { name: 'Ghost', externalId: 'acc-x' } })
    throw new Error('payment declined')
  })
  .catch(() => {})
await settle('a transaction that created Ghost rolled back: no event, nothing on the replica')

// The replica is a plain table: join against it with SQL.
const joined = await replicaDb.$queryRawUnsafe(`SELECT id, name, cqrs_revision AS revision FROM author_ref WHERE rating >= 5 ORDER BY id`)
say(`\n-- plain SQL on the replica: ${JSON.stringify(joined)}`)

// The diff at the end: every master row on the replica at the same revision, nothing extra.
const m = await master.author.findMany({ orderBy: { id: 'asc' } })
const r = await replicaDb.authorRef.findMany({ orderBy: { id: 'asc' } })
const key = (x: any) => JSON.stringify([x.id, x.name, x.rating, String(x.balance), x.cqrsRevision, x.cqrsUpdated.toISOString()])
const missing = m.filter((x: any) => !r.some((y: any) => key(y) === key(x)))
const extra = r.filter((y: any) => !m.some((x: any) => x.id === y.id))
say(`\n-- diff master vs replica: ${m.length} master rows, ${r.length} replica rows, ${missing.length} missing or different, ${extra.length} extra`)
say(missing.length + extra.length === 0 ? 'in sync.' : 'DRIFT (this is a bug: please report it)')
say(`replica stats: ${JSON.stringify(replica.stats.snapshot())}`)

await replica.stop()
await master.$cqrs.close()
await Promise.all([master.$disconnect(), replicaDb.$disconnect()])
process.exitCode = missing.length + extra.length === 0 ? 0 : 1
