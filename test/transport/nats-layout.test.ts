import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../src/core/errors.js'
import { memory, MemoryBroker } from '../../src/transport/memory/index.js'
import { resolveNatsOptions } from '../../src/transport/nats/nats-options.js'
import { durableName, durablePlans, routingKeyOf, streamSubjects, subjectFor } from '../../src/transport/nats/subjects.js'

const layout = { stream: 'CQRS', retryStream: 'CQRS_RETRY', deadLetterStream: 'CQRS_DLQ', subjectPrefix: 'cqrs' }

describe('NATS subjects', () => {
  it('maps the routing keys of PROTOCOL.md to subjects of the three streams', () => {
    expect(subjectFor(layout, 'author')).toEqual({ stream: 'CQRS', subject: 'cqrs.author' })
    expect(subjectFor(layout, 'cqrs.replica.author')).toEqual({ stream: 'CQRS', subject: 'cqrs.replica.author' })
    expect(subjectFor(layout, 'cqrs.dead_letter_replica.author')).toEqual({ stream: 'CQRS_DLQ', subject: 'cqrs_dlq.replica.author' })
    expect(streamSubjects(layout)).toEqual({ events: 'cqrs.>', retries: 'cqrs_retry.>', deadLetters: 'cqrs_dlq.>' })
  })

  it('a queue reads one durable per cqrs_id, one for its own subject and one for its retries', () => {
    expect(durablePlans(layout, { queue: 'replica', cqrsIds: ['author', 'book', 'author'] })).toEqual([
      { kind: 'event', stream: 'CQRS', name: 'replica__event__author', filterSubject: 'cqrs.author', cqrsId: 'author' },
      { kind: 'event', stream: 'CQRS', name: 'replica__event__book', filterSubject: 'cqrs.book', cqrsId: 'book' },
      { kind: 'direct', stream: 'CQRS', name: 'replica__direct', filterSubject: 'cqrs.replica.>' },
      { kind: 'retry', stream: 'CQRS_RETRY', name: 'replica__retry', filterSubject: 'cqrs_retry.replica.>' },
    ])
  })

  it('consumers see the routing keys RabbitMQ would show', () => {
    expect(routingKeyOf(layout, { kind: 'event', cqrsId: 'author' }, 'cqrs.author', 'replica')).toBe('author')
    expect(routingKeyOf(layout, { kind: 'direct' }, 'cqrs.replica.author', 'replica')).toBe('cqrs.replica.author')
    expect(routingKeyOf(layout, { kind: 'retry' }, 'cqrs_retry.replica.author', 'replica')).toBe('cqrs.replica.author')
  })

  it('durable names hold no dots; two names that differ only there stay apart', () => {
    expect(durableName('billing__direct')).toBe('billing__direct')
    const a = durableName('billing.eu__direct')
    const b = durableName('billing_eu__direct')
    expect(a).toMatch(/^billing_eu__direct-[0-9a-f]{8}$/)
    expect(a).not.toBe(b)
  })

  it('refuses queue names and cqrs_ids that cannot be subject tokens', () => {
    expect(() => durablePlans(layout, { queue: 'a b', cqrsIds: ['x'] })).toThrow(ConfigError)
    expect(() => durablePlans(layout, { queue: 'q', cqrsIds: ['x.>'] })).toThrow(/must not be empty or hold spaces, '\*', '>'/)
    expect(() => subjectFor(layout, 'a..b')).toThrow(ConfigError)
  })
})

describe('resolveNatsOptions', () => {
  it('fills in the defaults and names the companion streams', () => {
    expect(resolveNatsOptions({}, {})).toMatchObject({
      servers: ['nats://127.0.0.1:4222'],
      stream: 'CQRS',
      retryStream: 'CQRS_RETRY',
      deadLetterStream: 'CQRS_DLQ',
      subjectPrefix: 'cqrs',
      replicas: 1,
      duplicateWindowMs: 120_000,
      ackWaitMs: 30_000,
    })
  })

  it('takes NATS_URL (comma-separated for a cluster) and hides passwords', () => {
    const o = resolveNatsOptions({}, { NATS_URL: 'nats://u:pw@n1:4222, nats://u:pw@n2:4222' })
    expect(o.servers).toEqual(['nats://u:pw@n1:4222', 'nats://u:pw@n2:4222'])
    expect(o.safeServers).toBe('nats://u:***@n1:4222,nats://u:***@n2:4222')
  })

  it('names every bad option', () => {
    expect(() => resolveNatsOptions({ stream: 'a.b', replicas: 7 }, {})).toThrow(/stream: .*replicas: /)
    expect(() => resolveNatsOptions({ servers: 'amqp://x' }, {})).toThrow('NATS servers must be nats://, tls:// or host:port; got amqp://x')
  })
})

describe('ConsumeOptions.from on a transport without history', () => {
  it('memory (like rabbitmq) refuses it and says what to use instead', async () => {
    const t = memory({ broker: new MemoryBroker() })
    await expect(t.consume({ queue: 'q', cqrsIds: ['a'], retryDelaysMs: [], prefetch: 1, batchSize: 1, from: new Date() }, async () => [])).rejects.toThrow(
      /from \(--from\) needs a transport that keeps the events' history, such as nats\(\)/,
    )
  })
})
