/**
 * `cqrs relay --metrics-port` and `cqrs consume -w 2 --metrics-port` as users run them, on real
 * RabbitMQ and PostgreSQL: the counters scraped over HTTP match the events sent.
 */
import type { ChildProcess } from 'node:child_process'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import { encodeMessage } from '../../src/core/message.js'
import { rabbitmq } from '../../src/transport/rabbitmq/index.js'
import { runtime } from '../../src/transport/runtime-transport.js'
import { spawnCqrs, stderrOf, stop, waitForStderr } from '../support/cli.js'
import { eventually, tableDiff } from '../support/compare.js'
import { cqrsMessage } from '../support/messages.js'
import { AMQP_URL, createTestDatabase, type TestDatabase } from '../support/databases.js'
import { sample } from '../support/metrics-text.js'
import { deleteQueues } from '../support/rabbit-cleanup.js'
import { masterClient } from '../support/master.js'

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toContain('text/plain')
  return res.text()
}

const portOf = async (child: ChildProcess, command: string) => Number(/metrics on http:\/\/[^:]+:(\d+)\/metrics/.exec(await waitForStderr(child, new RegExp(`${command}: metrics on http://[^:]+:\\d+/metrics`)))![1])

describe('metrics over HTTP (relay and consume subprocesses)', () => {
  let master: TestDatabase
  let replica: TestDatabase
  const suffix = `_m${Math.random().toString(36).slice(2, 8)}`
  const queue = `metrics${suffix}`
  const cqrsId = `author${suffix}`
  const children: ChildProcess[] = []
  const closers: Array<() => Promise<unknown>> = []

  beforeAll(async () => {
    ;[master, replica] = await Promise.all([createTestDatabase('postgresql', 'mm'), createTestDatabase('postgresql', 'mr')])
  })
  afterEach(async () => {
    await Promise.allSettled(children.splice(0).map((c) => stop(c, 'SIGKILL')))
    for (const close of closers.splice(0)) await close().catch(() => {})
    await deleteQueues(queue)
  })
  afterAll(async () => {
    await Promise.allSettled([master?.drop(), replica?.drop()])
  })

  it('the counters match the events sent: rows applied, a poison message dead-lettered, a dead worker restarted', async () => {
    const env = { CQRS_TEST_DIALECT: 'postgresql', CQRS_MASTER_URL: master.url, CQRS_REPLICA_URL: replica.url, CQRS_QUEUE: queue, CQRS_ID_SUFFIX: suffix, AMQP_URL }
    const consume = spawnCqrs(['consume', '-w', '2', '--metrics-port', '0'], env)
    children.push(consume)
    const consumePort = await portOf(consume, 'cqrs consume')
    await waitForStderr(consume, /worker 1: ready/)
    await waitForStderr(consume, /worker 2: ready/)

    // The app writes with its relay off; `cqrs relay` publishes.
    const transport = rabbitmq({ url: AMQP_URL, logger: silentLogger })
    const prisma = await masterClient(await master.client(), { transport, logger: silentLogger, relay: { enabled: false }, models: { author: { cqrsId } } })
    closers.push(() => prisma.$cqrs.close())
    const rows = 60
    for (let i = 0; i < rows; i++) await prisma.author.create({ data: { name: `m${i}`, externalId: `e${i}` } })
    const relay = spawnCqrs(['relay', '--metrics-port', '0', '--poll-ms', '50'], env)
    children.push(relay)
    const relayPort = await portOf(relay, 'cqrs relay')

    // A poison message: valid JSON, but a required column is null.
    const poisoner = runtime(rabbitmq({ url: AMQP_URL, logger: silentLogger }))
    closers.push(() => poisoner.close())
    const poison = cqrsMessage('SAVE', cqrsId, { id: 999_999, name: null, cqrs_revision: 0 })
    await poisoner.publish([{ routingKey: cqrsId, body: encodeMessage(poison) }])

    await eventually(() => tableDiff(master, 'author', replica, 'author_ref'))
    let text = ''
    await eventually(async () => {
      text = await scrape(consumePort)
      const dead = sample(text, 'cqrs_messages_total', { queue, cqrs_id: cqrsId, outcome: 'dead_lettered' })
      const applied = sample(text, 'cqrs_messages_total', { queue, cqrs_id: cqrsId, outcome: 'applied' })
      return applied === rows && dead === 1 ? [] : [`applied ${applied}, dead-lettered ${dead}`]
    }, 20_000, 'the consumer metrics to count every message')
    expect(sample(text, 'cqrs_messages_total', { cqrs_id: cqrsId, outcome: 'retried' }) ?? 0).toBe(0)
    expect(sample(text, 'cqrs_apply_lag_seconds_count', { queue, cqrs_id: cqrsId })).toBe(rows)
    expect(sample(text, 'cqrs_dead_letter_queue_messages', { queue })).toBe(1)
    expect(sample(text, 'cqrs_retry_queue_messages', { queue })).toBe(0)
    expect(sample(text, 'cqrs_queue_consumers', { queue })).toBe(2)
    expect(sample(text, 'cqrs_worker_restarts_total')).toBe(0)
    // Process metrics of the supervisor and both workers, summed.
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0)

    const relayText = await scrape(relayPort)
    expect(sample(relayText, 'cqrs_events_published_total', { cqrs_id: cqrsId })).toBe(rows)
    expect(sample(relayText, 'cqrs_outbox_backlog')).toBe(0)
    expect(sample(relayText, 'cqrs_outbox_oldest_event_age_seconds')).toBe(0)
    expect(sample(relayText, 'cqrs_publish_duration_seconds_count')).toBeGreaterThanOrEqual(1)
    expect(sample(relayText, 'cqrs_relay_errors_total')).toBe(0)

    // A worker killed with SIGKILL is restarted, and the supervisor counts it.
    const pid = Number(/worker 1: ready;.*\(pid (\d+)\)/.exec(stderrOf(consume))![1])
    process.kill(pid, 'SIGKILL')
    await waitForStderr(consume, /worker 1 exited \(SIGKILL\); restarting/)
    await eventually(async () => (sample(await scrape(consumePort), 'cqrs_worker_restarts_total') === 1 ? [] : ['no restart counted']), 20_000, 'the restart to be counted')

    expect((await stop(relay, 'SIGTERM')).code).toBe(0)
    expect((await stop(consume, 'SIGTERM')).code).toBe(0)
  })
})
