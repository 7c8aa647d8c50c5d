import { describe, expect, it } from 'vitest'
import { resolveMasterOptions } from '../../src/config/master-options.js'
import { resolveReplicaOptions } from '../../src/config/replica-options.js'
import { nonNegativeInt, positiveInt, setting } from '../../src/config/settings.js'

const spec = { name: 'workers', env: 'CQRS_WORKERS', default: 1, parse: positiveInt('--workers') }

describe('settings precedence: flag > env > config > default', () => {
  it('takes each source in order', () => {
    expect(setting(spec, '4', 3, { CQRS_WORKERS: '2' })).toBe(4)
    expect(setting(spec, undefined, 3, { CQRS_WORKERS: '2' })).toBe(2)
    expect(setting(spec, undefined, 3, {})).toBe(3)
    expect(setting(spec, undefined, undefined, {})).toBe(1)
  })
  it('says what was wrong with a bad value', () => {
    expect(() => setting(spec, 'two', undefined, {})).toThrow("--workers must be a positive whole number; got 'two'")
  })
  it('takes 0 where a setting may be off (--gather-ms), and nothing below', () => {
    const gather = { name: 'gather-ms', env: 'CQRS_RELAY_GATHER_MS', default: 5, parse: nonNegativeInt('--gather-ms') }
    expect(setting(gather, '0', undefined, {})).toBe(0)
    expect(setting(gather, undefined, undefined, { CQRS_RELAY_GATHER_MS: '12' })).toBe(12)
    expect(setting(gather, undefined, 0, {})).toBe(0)
    for (const bad of ['-1', '2.5', ' ', 'soon']) expect(() => setting(gather, bad, undefined, {})).toThrow(`--gather-ms must be a whole number, 0 or more; got '${bad}'`)
  })
})

describe('option validation', () => {
  const transport = { name: 't', publish: async () => {}, consume: async () => ({ stop: async () => {} }) }
  it('names the unknown key and where it is', () => {
    expect(() => resolveMasterOptions({ transport, models: { account: { cqrsId: 'account', trackFields: ['x'] } } })).toThrow(/models\.account: unknown key\(s\) 'trackFields'/)
    expect(() => resolveMasterOptions({ transport, models: {} })).toThrow(/name at least one model/)
    expect(() => resolveMasterOptions({ models: { a: { cqrsId: 'a' } } })).toThrow(/transport: must be a transport, e\.g\. rabbitmq/)
  })
  it('gathers for 5 ms by default, takes 0 to turn it off, and refuses what is not a whole number of ms up to 1000', () => {
    const models = { a: { cqrsId: 'a' } }
    expect(resolveMasterOptions({ transport, models }).relay.gatherMs).toBe(5)
    expect(resolveMasterOptions({ transport, models, relay: { gatherMs: 0 } }).relay.gatherMs).toBe(0)
    for (const gatherMs of [-1, 1.5, 5000]) expect(() => resolveMasterOptions({ transport, models, relay: { gatherMs } })).toThrow(/relay\.gatherMs/)
  })
  it('takes trigger capture as the default, with a correlation id (the trigger reads it from the write transaction)', () => {
    expect(resolveMasterOptions({ transport, correlationId: () => 'x', models: { a: { cqrsId: 'a' } } }).capture).toBe('trigger')
  })
  it('checks replica options', () => {
    expect(() => resolveReplicaOptions({ prisma: { $transaction() {} }, transport, queue: 'bad queue', handlers: { a: { model: 'x' } } })).toThrow(/queue: may hold letters/)
  })
})
