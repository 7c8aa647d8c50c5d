import { describe, expect, it } from 'vitest'
import { resolveMasterOptions } from '../../src/config/master-options.js'
import { resolveReplicaOptions } from '../../src/config/replica-options.js'
import { positiveInt, setting } from '../../src/config/settings.js'

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
})

describe('option validation', () => {
  const transport = { name: 't', publish: async () => {}, consume: async () => ({ stop: async () => {} }) }
  it('names the unknown key and where it is', () => {
    expect(() => resolveMasterOptions({ transport, models: { account: { cqrsId: 'account', trackFields: ['x'] } } })).toThrow(/models\.account: unknown key\(s\) 'trackFields'/)
    expect(() => resolveMasterOptions({ transport, models: {} })).toThrow(/name at least one model/)
    expect(() => resolveMasterOptions({ models: { a: { cqrsId: 'a' } } })).toThrow(/transport: must be a transport, e\.g\. rabbitmq/)
  })
  it('takes trigger capture as the default, with a correlation id (the trigger reads it from the write transaction)', () => {
    expect(resolveMasterOptions({ transport, correlationId: () => 'x', models: { a: { cqrsId: 'a' } } }).capture).toBe('trigger')
  })
  it('checks replica options', () => {
    expect(() => resolveReplicaOptions({ prisma: { $transaction() {} }, transport, queue: 'bad queue', handlers: { a: { model: 'x' } } })).toThrow(/queue: may hold letters/)
  })
})
