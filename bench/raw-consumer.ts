/**
 * The raw replica of the end-to-end baseline, run as its own process (as `cqrs consume` is):
 * amqplib consume with a prefetch, greedy batches applied with one version-gated upsert by the
 * plain driver, acked with multiple=true. Env: RAW_DIALECT, RAW_DB_URL, RAW_QUEUE, RAW_KEYS
 * (routing keys to bind, comma-separated), RAW_PREFETCH. Says "ready" on stderr; SIGTERM stops it.
 */
import { amqpConnect, declareSink, rawApplier, rawConsume, type TestDatabase } from './support.js'

const env = process.env
const db = { dialect: env.RAW_DIALECT ?? 'postgresql', url: env.RAW_DB_URL! } as TestDatabase
const queue = env.RAW_QUEUE!
const conn = await amqpConnect('raw-consumer')
await declareSink(conn, queue, (env.RAW_KEYS ?? '').split(',').filter(Boolean))
const applier = await rawApplier(db)
let applied = 0
const stop = await rawConsume(conn, queue, Number(env.RAW_PREFETCH ?? 1000), applier, (n) => (applied += n))
process.stderr.write(`raw consumer: ready; queue ${queue} (pid ${process.pid})\n`)
process.once('SIGTERM', async () => {
  await stop()
  await applier.close()
  await conn.close().catch(() => {})
  process.stderr.write(`raw consumer: stopped; applied ${applied}\n`)
  process.exit(0)
})
