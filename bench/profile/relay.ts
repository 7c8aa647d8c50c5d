/**
 * Where the relay's time goes: `tsx bench/profile/relay.ts [events] [batchSize] [dialect]`.
 * Drains a full outbox with the library's Relay and PrismaOutboxStore, timing the broker part
 * (transport.publish, i.e. sending plus waiting for every confirm of the batch) apart from the
 * database part (peek, claim, delete, commit), under the CPU profiler.
 */
import { execFileSync } from 'node:child_process'
import { silentLogger } from '../../src/core/logger.js'
import { Relay } from '../../src/master/relay.js'
import { modelsOf, providerOf } from '../../src/prisma/internals.js'
import { findModel } from '../../src/prisma/model-plans.js'
import { PrismaOutboxStore } from '../../src/prisma/prisma-outbox-store.js'
import { rabbitmq } from '../../src/transport/rabbitmq/index.js'
import { runtime } from '../../src/transport/runtime-transport.js'
import { authorBodies, fillOutbox } from '../relay.js'
import { AMQP_URL, amqpConnect, createTestDatabase, declareSink, deleteQueues, type Dialect, uniqueSuffix } from '../support.js'
import { profiled } from './cpu.js'

const [nArg = '20000', batchArg = '500', dialect = 'postgresql'] = process.argv.slice(2)
const N = Number(nArg)
const db = await createTestDatabase(dialect as Dialect, 'prof')
const suffix = uniqueSuffix()
const cqrsId = `author_${suffix}`
const sink = `bench_prof_${suffix}`
const conn = await amqpConnect('prof')
await declareSink(conn, sink, [cqrsId])
const prisma = await db.client()
const transport = runtime(rabbitmq({ url: AMQP_URL, logger: silentLogger }))
let publishMs = 0
let batches = 0
const timed = Object.assign(Object.create(transport), {
  async publish(messages: any[]) {
    const t = performance.now()
    await transport.publish(messages)
    publishMs += performance.now() - t
    batches++
  },
  // The pipelining relay calls send(): time each batch from its first write to its last confirm.
  async send(messages: any[]) {
    const t = performance.now()
    const { confirmed } = await transport.send!(messages)
    batches++
    return { confirmed: confirmed.then(() => void (publishMs += performance.now() - t)) }
  },
})
const relay = new Relay({ store: new PrismaOutboxStore(prisma, providerOf(prisma), findModel(modelsOf(prisma), 'CqrsOutbox')!), transport: timed, batchSize: Number(batchArg), pollIntervalMs: 1000, logger: silentLogger })
await fillOutbox(db, cqrsId, authorBodies(cqrsId, 1, 500))
await relay.drain()
publishMs = 0
batches = 0
await fillOutbox(db, cqrsId, authorBodies(cqrsId, 1, N))
const cpu0 = process.cpuUsage()
const t0 = performance.now()
const { file } = await profiled(`relay-${dialect}-b${batchArg}`, () => relay.drain(600_000))
const ms = performance.now() - t0
const cpu = process.cpuUsage(cpu0)
console.log(`relay ${dialect} batch ${batchArg}: ${N} events in ${ms.toFixed(0)} ms = ${((N * 1000) / ms).toFixed(0)}/s; ${batches} batches; ` +
  `broker (publish + confirms) ${publishMs.toFixed(0)} ms (${((100 * publishMs) / ms).toFixed(0)}%), database ${(ms - publishMs).toFixed(0)} ms (${((100 * (ms - publishMs)) / ms).toFixed(0)}%); node CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms = ${((cpu.user + cpu.system) / 10 / ms).toFixed(0)}% of a core`)
await transport.close()
await conn.close()
await deleteQueues([sink])
await db.drop()
console.log(execFileSync(process.execPath, ['--import', 'tsx', 'bench/profile/summarize.ts', file, '18'], { encoding: 'utf8' }))
