/**
 * One trace from the write on the master to the replica's commit, on real PostgreSQL and RabbitMQ:
 * the write's span -> the relay's publish span (from the outbox row's traceparent) -> the replica's
 * apply span (from the AMQP traceparent header), collected with the SDK's in-memory exporter.
 */
import { context, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import { cqrsMetrics } from '../../src/metrics/cqrs-metrics.js'
import { cqrsReplica, type Replica } from '../../src/prisma/cqrs-replica.js'
import { rabbitmq } from '../../src/transport/rabbitmq/index.js'
import { eventually, tableDiff } from '../support/compare.js'
import { AMQP_URL, createTestDatabase, type TestDatabase } from '../support/databases.js'
import { sample } from '../support/metrics-text.js'
import { deleteQueues } from '../support/rabbit-cleanup.js'
import { masterClient } from '../support/master.js'

describe('in process: traces from the write to the replica commit, and metrics', () => {
  let master: TestDatabase
  let replicaDb: TestDatabase
  let prisma: any
  let replica: Replica
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const suffix = `_t${Math.random().toString(36).slice(2, 8)}`
  const queue = `traces${suffix}`
  const cqrsId = `author${suffix}`

  beforeAll(async () => {
    // In-process metrics count from the first cqrsMetrics() call on.
    await cqrsMetrics()
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
    trace.setGlobalTracerProvider(provider)
    ;[master, replicaDb] = await Promise.all([createTestDatabase('postgresql', 'tm'), createTestDatabase('postgresql', 'tr')])
    prisma = await masterClient(await master.client(), { transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), logger: silentLogger, models: { author: { cqrsId } } })
    replica = cqrsReplica({ prisma: await replicaDb.client(), transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), logger: silentLogger, queue, handlers: { [cqrsId]: { model: 'authorRef' } } })
    await replica.start()
  })
  afterAll(async () => {
    await replica?.stop()
    await prisma?.$cqrs.close()
    await deleteQueues(queue)
    await Promise.allSettled([master?.drop(), replicaDb?.drop()])
    await provider.shutdown()
    trace.disable()
    context.disable()
  })

  it('the publish and the apply are spans of the write’s trace, each a child of the one before', async () => {
    const tracer = trace.getTracer('app')
    const written = await tracer.startActiveSpan('POST /authors', async (span) => {
      try {
        return await prisma.author.create({ data: { name: 'traced', externalId: 't1' } })
      } finally {
        span.end()
      }
    })
    // An untraced write leaves no context in the outbox and makes no spans.
    await prisma.author.create({ data: { name: 'untraced', externalId: 't2' } })
    await eventually(() => tableDiff(master, 'author', replicaDb, 'author_ref'))
    let spans: ReadableSpan[] = []
    await eventually(async () => {
      spans = exporter.getFinishedSpans()
      return spans.some((s) => s.name.startsWith('cqrs apply')) ? [] : [spans.map((s) => s.name).join(', ')]
    }, 10_000, 'the apply span')
    const write = spans.find((s) => s.name === 'POST /authors')!
    const publish = spans.filter((s) => s.name === `cqrs publish ${cqrsId}`)
    const apply = spans.filter((s) => s.name === `cqrs apply ${cqrsId}`)
    expect(publish).toHaveLength(1)
    expect(apply).toHaveLength(1)
    const traceId = write.spanContext().traceId
    expect(publish[0].spanContext().traceId).toBe(traceId)
    expect(apply[0].spanContext().traceId).toBe(traceId)
    expect(publish[0].parentSpanContext?.spanId).toBe(write.spanContext().spanId)
    expect(apply[0].parentSpanContext?.spanId).toBe(publish[0].spanContext().spanId)
    expect(publish[0].attributes['messaging.message.id']).toBeDefined()
    expect(apply[0].attributes).toMatchObject({ cqrs_id: cqrsId, queue, outcome: 'ack' })
    expect(spans.filter((s) => s.spanContext().traceId !== traceId)).toEqual([])
    expect(written.id).toBeGreaterThan(0)
  })

  it('in-process metrics: $cqrs.metrics() shows what this process published and applied', async () => {
    // Runs after the trace test: its two writes were published by the in-process relay and applied here.
    const text = await prisma.$cqrs.metrics()
    expect(sample(text, 'cqrs_events_published_total', { cqrs_id: cqrsId })).toBe(2)
    expect(sample(text, 'cqrs_messages_total', { queue, cqrs_id: cqrsId, outcome: 'applied' })).toBe(2)
    expect(sample(text, 'cqrs_outbox_backlog')).toBe(0)
    expect(sample(text, 'cqrs_queue_consumers', { queue })).toBe(1)
  })
})
