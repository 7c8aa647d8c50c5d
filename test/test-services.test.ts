import { describe, expect, it } from 'vitest'
import { servicesToStart, type Service } from '../integration/support/test-services.js'

const none = new Set<Service>()
const all = new Set<Service>(['postgresql', 'mysql', 'rabbitmq'])

describe('which services the test setup starts with testcontainers', () => {
  it('starts nothing when every service answers (this machine, CI)', () => {
    expect(servicesToStart({ env: {}, reachable: all, docker: true })).toEqual({ start: [], missing: [] })
  })

  it('starts every service on a machine with Docker and none running', () => {
    expect(servicesToStart({ env: {}, reachable: none, docker: true }).start).toEqual(['postgresql', 'mysql', 'rabbitmq'])
  })

  it('starts only the ones that do not answer', () => {
    expect(servicesToStart({ env: {}, reachable: new Set<Service>(['postgresql']), docker: true }).start).toEqual(['mysql', 'rabbitmq'])
  })

  it('never replaces a URL given in env, even one that does not answer', () => {
    const plan = servicesToStart({ env: { DATABASE_URL: 'postgresql://db.example:5432/x', AMQP_URL: 'amqp://mq.example' }, reachable: none, docker: true })
    expect(plan.start).toEqual(['mysql'])
  })

  it('skips MariaDB when the MySQL dialect is not tested', () => {
    expect(servicesToStart({ env: { CQRS_TEST_DIALECTS: 'postgresql,sqlite' }, reachable: none, docker: true }).start).toEqual(['postgresql', 'rabbitmq'])
  })

  it('without Docker, says what is missing and how to fix it instead of starting', () => {
    const plan = servicesToStart({ env: {}, reachable: new Set<Service>(['postgresql', 'mysql']), docker: false })
    expect(plan.start).toEqual([])
    expect(plan.missing).toEqual([expect.stringMatching(/^rabbitmq: nothing answers at amqp:.*docker compose up -d rabbitmq.*AMQP_URL/)])
  })
})
