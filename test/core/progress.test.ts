import { describe, expect, it } from 'vitest'
import { duration } from '../../src/core/duration.js'
import { Progress, shortNumber } from '../../src/cli/progress.js'

describe('progress', () => {
  it('prints at most once per interval, with rate and time left', () => {
    let now = 0
    const lines: string[] = []
    const p = new Progress({ label: 'cqrs bulk-dump', enabled: true, total: 1000, now: () => now, write: (l) => lines.push(l) })
    now = 500
    p.add(100)
    expect(lines).toHaveLength(0)
    now = 1000
    p.add(100)
    expect(lines).toEqual(['cqrs bulk-dump: 200 of 1,000 rows (20%), 200 rows/s, about 4.0 s left'])
    now = 4000
    p.add(800)
    expect(p.summary('dumped 1000 rows of author')).toBe('cqrs bulk-dump: dumped 1000 rows of author in 4.0 s (250 rows/s)')
  })

  it('prints nothing but the summary when disabled', () => {
    const lines: string[] = []
    let now = 0
    const p = new Progress({ label: 'x', enabled: false, now: () => now, write: (l) => lines.push(l) })
    now = 5000
    p.add(10)
    p.summary('done')
    expect(lines).toEqual(['x: done in 5.0 s (2 rows/s)'])
  })

  it('formats numbers and durations', () => {
    expect(shortNumber(123456)).toBe('123k')
    expect(shortNumber(1234567)).toBe('1.2M')
    expect(shortNumber(999)).toBe('999')
    expect(duration(8100)).toBe('8.1 s')
    expect(duration(125_000)).toBe('2 min 5 s')
  })
})
