import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../src/core/errors.js'
import { declareTopology } from '../../src/transport/rabbitmq/declare-topology.js'
import {
  deadLetterPlan,
  deadLetterRoute,
  delayQueuePlan,
  describeTopology,
  exchangePlan,
  retryRoute,
  topologyPlan,
} from '../../src/transport/rabbitmq/topology.js'

const spec = { queue: 'replica', cqrsIds: ['author', 'book'], retryDelaysMs: [5000, 1000, 1000] }

describe('topologyPlan', () => {
  const plan = topologyPlan(spec)

  it('declares the topic exchange and the delay headers exchange, both durable', () => {
    expect(plan.exchanges).toEqual([
      { name: 'cqrs', type: 'topic', durable: true },
      { name: 'cqrs.delay', type: 'headers', durable: true },
    ])
  })

  it('declares the replica queue, one delay queue per distinct delay, and the dead-letter queue', () => {
    expect(plan.queues).toEqual([
      { name: 'replica', role: 'replica', durable: true, arguments: {} },
      { name: 'replica.retry.1000', role: 'delay', durable: true, arguments: { 'x-message-ttl': 1000, 'x-dead-letter-exchange': 'cqrs' } },
      { name: 'replica.retry.5000', role: 'delay', durable: true, arguments: { 'x-message-ttl': 5000, 'x-dead-letter-exchange': 'cqrs' } },
      { name: 'dead_letter_replica', role: 'dead-letter', durable: true, arguments: {} },
    ])
  })

  it('delay queues dead-letter without a routing key, so messages keep cqrs.<Q>.<cqrs_id>', () => {
    for (const q of plan.queues.filter((q) => q.role === 'delay')) {
      expect(q.arguments).not.toHaveProperty('x-dead-letter-routing-key')
    }
  })

  it('binds the replica queue to <cqrs_id> and cqrs.<Q>.<cqrs_id> for each cqrs_id', () => {
    expect(plan.bindings.filter((b) => b.queue === 'replica')).toEqual([
      { queue: 'replica', exchange: 'cqrs', routingKey: 'author' },
      { queue: 'replica', exchange: 'cqrs', routingKey: 'cqrs.replica.author' },
      { queue: 'replica', exchange: 'cqrs', routingKey: 'book' },
      { queue: 'replica', exchange: 'cqrs', routingKey: 'cqrs.replica.book' },
    ])
  })

  it('binds each delay queue to the delay exchange on its queue and delay headers (strings)', () => {
    expect(plan.bindings.find((b) => b.queue === 'replica.retry.1000')).toEqual({
      queue: 'replica.retry.1000',
      exchange: 'cqrs.delay',
      routingKey: '',
      arguments: { 'x-match': 'all', 'cqrs-delay-queue': 'replica', 'cqrs-delay-ms': '1000' },
    })
  })

  it('binds dead_letter_<Q> to cqrs.dead_letter_<Q>.#', () => {
    expect(plan.bindings.filter((b) => b.queue === 'dead_letter_replica')).toEqual([
      { queue: 'dead_letter_replica', exchange: 'cqrs', routingKey: 'cqrs.dead_letter_replica.#' },
    ])
  })

  it('uses the configured exchange everywhere', () => {
    const p = topologyPlan(spec, 'events')
    expect(p.exchanges.map((e) => e.name)).toEqual(['events', 'events.delay'])
    expect(new Set(p.bindings.map((b) => b.exchange))).toEqual(new Set(['events', 'events.delay']))
    expect(p.queues[1].arguments['x-dead-letter-exchange']).toBe('events')
  })

  it('binds a cqrs_id listed twice once', () => {
    const p = topologyPlan({ queue: 'q', cqrsIds: ['a', 'a'], retryDelaysMs: [] })
    expect(p.bindings.filter((b) => b.queue === 'q').map((b) => b.routingKey)).toEqual(['a', 'cqrs.q.a'])
  })

  it('refuses delays that are not whole milliseconds, and an empty queue name', () => {
    expect(() => delayQueuePlan('q', 1.5, 'cqrs')).toThrow(ConfigError)
    expect(() => delayQueuePlan('q', -1, 'cqrs')).toThrow(/whole milliseconds/)
    expect(() => topologyPlan({ queue: '', cqrsIds: [], retryDelaysMs: [] })).toThrow(ConfigError)
  })

  it('exchangePlan has no queues', () => {
    expect(exchangePlan('cqrs').queues).toEqual([])
  })
})

describe('topologyPlan with quorum queues', () => {
  const plan = topologyPlan(spec, 'cqrs', 'quorum')

  it('declares the replica queue, its delay queues and its dead-letter queue as quorum queues', () => {
    expect(plan.queues.map((q) => [q.name, q.arguments['x-queue-type']])).toEqual([
      ['replica', 'quorum'],
      ['replica.retry.1000', 'quorum'],
      ['replica.retry.5000', 'quorum'],
      ['dead_letter_replica', 'quorum'],
    ])
  })

  it('delay queues keep their TTL and dead-letter at least once (which needs reject-publish overflow)', () => {
    expect(plan.queues.find((q) => q.name === 'replica.retry.1000')!.arguments).toEqual({
      'x-queue-type': 'quorum',
      'x-message-ttl': 1000,
      'x-dead-letter-exchange': 'cqrs',
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
    })
  })

  it('asks for nothing a quorum queue refuses (exclusive, auto-delete, priorities, non-durable)', () => {
    for (const q of plan.queues) {
      expect(q.durable).toBe(true)
      expect(Object.keys(q.arguments).filter((k) => ['x-max-priority', 'x-expires', 'x-queue-mode', 'x-queue-master-locator'].includes(k))).toEqual([])
    }
  })

  it('binds and routes exactly as classic queues do, so both kinds share one exchange', () => {
    expect(plan.exchanges).toEqual(topologyPlan(spec).exchanges)
    expect(plan.bindings).toEqual(topologyPlan(spec).bindings)
  })

  it('classic stays the default and carries no x-queue-type (what django-cqrs declares)', () => {
    for (const q of topologyPlan(spec).queues) expect(q.arguments).not.toHaveProperty('x-queue-type')
    expect(deadLetterPlan('q', 'cqrs', 'quorum').queues[0].arguments).toEqual({ 'x-queue-type': 'quorum' })
  })

  it('describeTopology shows the queue type', () => {
    expect(describeTopology(spec, { queueType: 'quorum' })).toContain('queue replica (replica, durable, x-queue-type=quorum)')
  })
})

describe('routes', () => {
  it('a retry goes to the delay exchange with the direct key and the delay headers', () => {
    expect(retryRoute('replica', 'author', 1000, 'cqrs', { 'x-trace': 'abc' })).toEqual({
      exchange: 'cqrs.delay',
      routingKey: 'cqrs.replica.author',
      headers: { 'x-trace': 'abc', 'cqrs-delay-queue': 'replica', 'cqrs-delay-ms': '1000' },
    })
  })

  it('a dead letter goes to cqrs.dead_letter_<Q>.<cqrs_id>, expiring only when asked', () => {
    expect(deadLetterRoute('replica', 'author', 'cqrs', { error: 'boom' })).toEqual({
      exchange: 'cqrs',
      routingKey: 'cqrs.dead_letter_replica.author',
      headers: { error: 'boom' },
    })
    expect(deadLetterRoute('replica', 'author', 'cqrs', {}, 864_000_000).expiration).toBe('864000000')
  })
})

describe('describeTopology', () => {
  it('renders every exchange, queue and binding', () => {
    expect(describeTopology(spec)).toBe(
      [
        'exchange cqrs (topic, durable)',
        'exchange cqrs.delay (headers, durable)',
        'queue replica (replica, durable)',
        '  bound to cqrs by key author',
        '  bound to cqrs by key cqrs.replica.author',
        '  bound to cqrs by key book',
        '  bound to cqrs by key cqrs.replica.book',
        'queue replica.retry.1000 (delay, durable, x-message-ttl=1000, x-dead-letter-exchange=cqrs)',
        '  bound to cqrs.delay by headers x-match=all cqrs-delay-queue=replica cqrs-delay-ms=1000',
        'queue replica.retry.5000 (delay, durable, x-message-ttl=5000, x-dead-letter-exchange=cqrs)',
        '  bound to cqrs.delay by headers x-match=all cqrs-delay-queue=replica cqrs-delay-ms=5000',
        'queue dead_letter_replica (dead-letter, durable)',
        '  bound to cqrs by key cqrs.dead_letter_replica.#',
        '',
      ].join('\n'),
    )
  })
})

describe('declareTopology', () => {
  it('declares exchanges, then queues, then bindings, with the plan arguments', async () => {
    const calls: unknown[][] = []
    const channel = {
      assertExchange: async (...args: unknown[]) => (calls.push(['exchange', ...args]), { exchange: String(args[0]) }),
      assertQueue: async (...args: unknown[]) => (calls.push(['queue', ...args]), { queue: String(args[0]), messageCount: 0, consumerCount: 0 }),
      bindQueue: async (...args: unknown[]) => (calls.push(['bind', ...args]), {}),
    }
    await declareTopology(channel as never, topologyPlan({ queue: 'q', cqrsIds: ['a'], retryDelaysMs: [10] }))
    expect(calls).toEqual([
      ['exchange', 'cqrs', 'topic', { durable: true }],
      ['exchange', 'cqrs.delay', 'headers', { durable: true }],
      ['queue', 'q', { durable: true, arguments: {} }],
      ['queue', 'q.retry.10', { durable: true, arguments: { 'x-message-ttl': 10, 'x-dead-letter-exchange': 'cqrs' } }],
      ['queue', 'dead_letter_q', { durable: true, arguments: {} }],
      ['bind', 'q', 'cqrs', 'a', undefined],
      ['bind', 'q', 'cqrs', 'cqrs.q.a', undefined],
      ['bind', 'q.retry.10', 'cqrs.delay', '', { 'x-match': 'all', 'cqrs-delay-queue': 'q', 'cqrs-delay-ms': '10' }],
      ['bind', 'dead_letter_q', 'cqrs', 'cqrs.dead_letter_q.#', undefined],
    ])
  })
})
