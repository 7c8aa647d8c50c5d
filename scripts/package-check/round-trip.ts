// Run by scripts/check-package.mjs from the installed package in a fresh app: one short
// master-to-replica round trip through RabbitMQ on PostgreSQL. Exits 0 when the replica table
// ends equal to the master's (ids, names, revisions; the deleted row gone).
import { PrismaPg } from '@prisma/adapter-pg'
import { cqrsMaster, cqrsReplica, silentLogger } from 'cqrs-sync'
import { rabbitmq } from 'cqrs-sync/rabbitmq'
import { PrismaClient } from '../generated/client.js'

const url = process.env.DATABASE_URL!
const tag = process.env.CHECK_TAG!
const cqrsId = `account_${tag}`

const base = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) })
const master = base.$extends(cqrsMaster({ transport: rabbitmq({ url: process.env.AMQP_URL }), models: { account: { cqrsId } }, logger: silentLogger }))
const replicaDb = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) })
const replica = cqrsReplica({ prisma: replicaDb, transport: rabbitmq({ url: process.env.AMQP_URL }), queue: `check_${tag}`, handlers: { [cqrsId]: { model: 'accountRef' } }, logger: silentLogger })

await replica.start() // declares the queue and its bindings before the master publishes
const ada = await master.account.create({ data: { name: 'Ada' } })
await master.account.update({ where: { id: ada.id }, data: { name: 'Ada L.' } })
const bob = await master.account.create({ data: { name: 'Bob' } })
await master.account.delete({ where: { id: bob.id } })
await master.account.create({ data: { name: 'Cy' } })
await master.$cqrs.flush(30_000)

const rows = async (db: any, model: string) =>
  JSON.stringify((await db[model].findMany({ orderBy: { id: 'asc' } })).map((r: any) => [r.id, r.name, r.cqrsRevision]))
const want = await rows(base, 'account')
const deadline = Date.now() + 30_000
let got = await rows(replicaDb, 'accountRef')
// The replica applies asynchronously; look until it matches (or give up with both sides printed).
while (got !== want && Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 50))
  got = await rows(replicaDb, 'accountRef')
}
await replica.stop()
await master.$cqrs.close()
await Promise.all([base.$disconnect(), replicaDb.$disconnect()])
if (got !== want) {
  console.error(`round trip: the replica did not converge\n  master:  ${want}\n  replica: ${got}`)
  process.exit(1)
}
console.log(`round trip: replica equals master ${want}`)
