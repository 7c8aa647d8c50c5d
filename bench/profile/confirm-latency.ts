/**
 * How long the broker takes to confirm a publish on a transport that also consumes:
 * `tsx bench/profile/confirm-latency.ts [messages/s] [seconds] [burst]`.
 * One `rabbitmq()` transport, as a service that is the master of one model and a replica of another
 * has: it publishes events (one `publish()` per burst, awaiting the confirms) while a consumer on the
 * same transport, so the same connection, takes messages from a queue of its own and acks them.
 * Prints the confirm latency, then the same with nothing consuming, where every write on the
 * connection is a publish. Used to find that amqplib left Nagle's algorithm on (BENCHMARKS.md).
 */
import { rabbitmq, silentLogger } from '../package.js'
import { percentile } from '../stats.js'
import { AMQP_URL, deleteQueues, sleep, uniqueSuffix } from '../support.js'

const [rateArg = '1000', secondsArg = '4', burstArg = '1'] = process.argv.slice(2)
const [RATE, BURST] = [Number(rateArg), Number(burstArg)]
const suffix = uniqueSuffix()
const key = `confirm_${suffix}`
const queue = `bench_confirm_${suffix}`

async function run(consuming: boolean): Promise<string> {
  const transport = rabbitmq({ url: AMQP_URL, logger: silentLogger })
  await transport.connect()
  // The replica side: binds `key`, acks every delivery (its handler does nothing).
  const sub = consuming ? await transport.consume({ queue, cqrsIds: [key], retryDelaysMs: [], prefetch: 1000, batchSize: 200 }, async (batch) => batch.map(() => ({ kind: 'ack' as const }))) : null
  const lat: number[] = []
  const inFlight: Promise<void>[] = []
  const t0 = performance.now()
  let n = 0
  while (performance.now() - t0 < Number(secondsArg) * 1000) {
    const due = Math.floor(((performance.now() - t0) / 1000) * RATE)
    for (; n + BURST <= due; n += BURST) {
      const at = performance.now()
      const messages = Array.from({ length: BURST }, (_, k) => ({ routingKey: key, body: `{"n":${n + k}}`, messageId: String(n + k) }))
      inFlight.push(transport.publish(messages).then(() => void lat.push(performance.now() - at)))
    }
    await sleep(1)
  }
  await Promise.all(inFlight)
  await sub?.stop()
  await transport.close()
  return `${consuming ? 'consuming on the same connection' : 'publishing only                 '}: ${lat.length} publishes of ${BURST} at ${RATE} messages/s, confirm p50 ${percentile(lat, 0.5).toFixed(2)} p90 ${percentile(lat, 0.9).toFixed(2)} p99 ${percentile(lat, 0.99).toFixed(2)} ms`
}

try {
  console.log(await run(true))
  // Nothing consumes the queue now: it stores what comes.
  console.log(await run(false))
} finally {
  await deleteQueues([queue, `dead_letter_${queue}`])
}
