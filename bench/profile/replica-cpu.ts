/**
 * The replica's own CPU per event, without the broker or the database: `tsx bench/profile/replica-cpu.ts [events] [batch]`.
 * Batches of author SAVEs go through the consumer's handle() (decode, version gate, statements, the
 * PostgreSQL script) against a store whose session answers at once; the raw line does what the raw
 * consumer does with the same bodies (JSON.parse, one unnest upsert's parameters).
 */
import { cqrsReplica, memory, silentLogger } from '../package.js'
import { authorEventBody, createTestDatabase, rawColumns } from '../support.js'
import { profiled } from './cpu.js'

const [nArg = '20000', batchArg = '200'] = process.argv.slice(2)
const N = Number(nArg)
const B = Number(batchArg)
const db = await createTestDatabase('postgresql', 'cpu')
const prisma = await db.client()
const cqrsId = 'author_cpu'
const rep = cqrsReplica({ prisma, transport: memory(), queue: 'cpu', handlers: { [cqrsId]: { model: 'authorRef' } }, logger: silentLogger })
let scriptBytes = 0
// The store's session answers each script at once: BEGIN, the lock, one upsert naming every pk, COMMIT.
;(rep.store as any).fast.session = async () => ({
  run: async ([script]: string[]) => {
    scriptBytes += script.length
    return [[], [{ n: '1' }], [], []]
  },
  release() {},
})
const batches: any[][] = []
for (let i = 0; i < N; i += B) {
  batches.push(Array.from({ length: Math.min(B, N - i) }, (_, k) => ({ body: Buffer.from(authorEventBody(cqrsId, i + k + 1, 1)), routingKey: cqrsId, headers: {}, redelivered: false })))
}
const runOurs = async () => {
  for (const b of batches) await rep.consumer.handle(b)
}
const runRaw = async () => {
  // What the raw consumer does with a batch before its statement (bench/support.ts rawApplier).
  for (const b of batches) scriptBytes += JSON.stringify(rawColumns(b.map((d) => d.body))).length
}
const time = async (label: string, fn: () => Promise<void>) => {
  for (let r = 0; r < 3; r++) await fn() // warm
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  const reps = 5
  for (let r = 0; r < reps; r++) await fn()
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(c0)
  console.log(`${label}: ${((1000 * ms) / (reps * N)).toFixed(2)} µs per event wall, ${((cpu.user + cpu.system) / (reps * N)).toFixed(2)} µs CPU (all threads)`)
}
await time('raw  ', runRaw)
await time('ours ', runOurs)
if (process.argv.includes('--profile')) {
  const { file } = await profiled('replica-cpu', async () => { for (let r = 0; r < 5; r++) await runOurs() })
  console.log(file)
}
await rep.store.close()
await prisma.$disconnect()
await db.drop()
