import { describe, expect, it } from 'vitest'
import { JsonCompactor } from '../../src/core/dump-format.js'

describe('JsonCompactor (bulk-dump lines rendered by PostgreSQL)', () => {
  it('takes out whitespace outside strings, keeps it inside them and keeps line ends', () => {
    const text = '{"i":1,"profile":{"a": [1, 2], "s": "x y \\" z"}}\n{"j":"é ✓",  "k": {"b": 33.0}}\n'
    expect(new JsonCompactor().push(Buffer.from(text)).toString()).toBe('{"i":1,"profile":{"a":[1,2],"s":"x y \\" z"}}\n{"j":"é ✓","k":{"b":33.0}}\n')
  })

  it('gives the same bytes whatever the chunk boundaries (inside a string, an escape or a character)', () => {
    const text = Buffer.from('{"p": {"s": "a \\\\\\" b ✓ c", "n": [1, 2]}}\n{"q": " "}\n')
    const whole = new JsonCompactor().push(text).toString()
    for (let cut = 1; cut < text.length; cut++) {
      const c = new JsonCompactor()
      expect(Buffer.concat([c.push(text.subarray(0, cut)), c.push(text.subarray(cut))]).toString(), `cut at ${cut}`).toBe(whole)
    }
    expect(whole).toBe('{"p":{"s":"a \\\\\\" b ✓ c","n":[1,2]}}\n{"q":" "}\n')
  })
})
