import { afterEach, describe, expect, it, vi } from 'vitest'
import { redact, stderrLogger } from '../../src/core/logger.js'

describe('logs', () => {
  afterEach(() => vi.restoreAllMocks())

  it('are one JSON object per line, with the label names of the metrics', () => {
    const lines: string[] = []
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: any) => (lines.push(String(chunk)), true))
    stderrLogger('info').warn('cqrs consume: dead-lettered', { queue: 'payments', cqrs_id: 'account', pk: 7n, error: new Error('boom') })
    expect(lines).toHaveLength(1)
    expect(lines[0].endsWith('\n')).toBe(true)
    expect(JSON.parse(lines[0])).toMatchObject({ level: 'warn', msg: 'cqrs consume: dead-lettered', queue: 'payments', cqrs_id: 'account', pk: '7', error: 'boom' })
  })

  it('keep secrets out: URL passwords, password= settings and secret keys, nested too', () => {
    const out = JSON.stringify(
      redact({
        url: 'amqp://guest:hunter2@rabbit:5672',
        error: new Error('connect failed: postgresql://app:s3cr3t@db/x'),
        dsn: 'host=db user=app password=s3cr3t dbname=x',
        nested: { options: { password: 'p4ss', hosts: ['mysql://root:r00t@h/db'] } },
      }),
    )
    for (const secret of ['hunter2', 's3cr3t', 'p4ss', 'r00t']) expect(out).not.toContain(secret)
    expect(out).toContain('amqp://guest:***@rabbit:5672')
  })
})
