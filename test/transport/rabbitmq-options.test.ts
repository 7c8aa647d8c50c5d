import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../src/core/errors.js'
import { DEFAULT_AMQP_URL, resolveRabbitmqOptions } from '../../src/transport/rabbitmq/rabbitmq-options.js'

describe('resolveRabbitmqOptions', () => {
  it('fills in the defaults', () => {
    const o = resolveRabbitmqOptions({}, {})
    expect(o).toMatchObject({
      url: DEFAULT_AMQP_URL,
      safeUrl: 'amqp://guest:***@127.0.0.1:5672',
      connectUrl: DEFAULT_AMQP_URL,
      exchange: 'cqrs',
      publishConfirmWindow: 1000,
      reconnect: { initialMs: 100, maxMs: 10_000 },
      connectionName: 'cqrs-sync',
      queueType: 'classic',
    })
    expect(o.deadLetterExpirationMs).toBeUndefined()
    expect(typeof o.logger.warn).toBe('function')
  })

  it('takes the URL from AMQP_URL unless given, and adds the heartbeat to it', () => {
    expect(resolveRabbitmqOptions({}, { AMQP_URL: 'amqp://u:p@mq:5672/v' }).url).toBe('amqp://u:p@mq:5672/v')
    expect(resolveRabbitmqOptions({ url: 'amqp://a@b' }, { AMQP_URL: 'amqp://u:p@mq' }).url).toBe('amqp://a@b')
    expect(resolveRabbitmqOptions({ url: 'amqp://u:p@mq:5672/v', heartbeat: 5 }, {}).connectUrl).toBe('amqp://u:p@mq:5672/v?heartbeat=5')
  })

  it('names every bad option, and never shows the password', () => {
    const bad = () => resolveRabbitmqOptions({ publishConfirmWindow: 0, reconnect: { initialMs: -1 }, exchange: '' }, {})
    expect(bad).toThrow(ConfigError)
    expect(bad).toThrow(/publishConfirmWindow: .*reconnect\.initialMs: /s)
    expect(() => resolveRabbitmqOptions({ urll: 'x' } as never, {})).toThrow(/Unrecognized key/)
    expect(() => resolveRabbitmqOptions({ logger: {} as never }, {})).toThrow(/logger: must be an object with error, warn, info and debug methods/)
    expect(() => resolveRabbitmqOptions({}, { AMQP_URL: 'http://u:secret@mq' })).toThrow('AMQP_URL must start with amqp:// or amqps://; got http://u:***@mq')
    expect(() => resolveRabbitmqOptions({ queueType: 'stream' as never }, {})).toThrow(/queueType: /)
    expect(() => resolveRabbitmqOptions({ reconnect: { initialMs: 500, maxMs: 100 } }, {})).toThrow(/reconnect.maxMs \(100\) must be >= reconnect.initialMs \(500\)/)
  })
})
