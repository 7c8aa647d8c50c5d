import { parse as losslessParse } from 'lossless-json'

/**
 * A JSON number kept as the text it was written with: a decimal with more digits than a double holds
 * (`1234567890.12345678`), a form a double would rewrite (`33.0`, `1e-7`, `-0`). {@link parseJson}
 * returns it for such numbers and {@link stringifyJson} writes it back as it came, so a value passes
 * through cqrs-sync unchanged.
 */
export class RawJson {
  constructor(readonly text: string) {}
  toJSON(): never {
    // Native JSON.stringify would write {"text":...}: every writer of wire values must use stringifyJson.
    throw new TypeError('a RawJson number must be written with stringifyJson, not JSON.stringify')
  }
}

/** The number JSON.parse would give for `text`, or null when that loses what was written. */
function plainNumber(text: string): number | null {
  const n = Number(text)
  return String(n) === text && Number.isSafeInteger(Math.trunc(n)) ? n : null
}

/**
 * Whether the number `text[start, end)` is surely read exactly by JSON.parse, without {@link plainNumber}:
 * at most 15 characters (so at most 15 significant digits, which a double keeps, and an integer part
 * far below 2^53), no exponent, not `-0`, and, with a fraction, no trailing zero (`33.0`) and a value of
 * at least 1e-6 (below it JavaScript writes `1e-7`). False sends the number to plainNumber, which decides.
 */
function shortExact(text: string, start: number, dot: number, exponent: boolean, end: number): boolean {
  if (exponent || end - start > 15) return false
  // An integer, but -0 (JSON.parse gives the double -0, which JavaScript writes as 0).
  if (dot === -1) return !(end - start === 2 && text.charCodeAt(start) === 45 && text.charCodeAt(start + 1) === 48)
  if (text.charCodeAt(end - 1) === 48 /* 0 */) return false
  const int = text.charCodeAt(start) === 45 /* - */ ? start + 1 : start
  if (text.charCodeAt(int) !== 48) return true // 1 or more, no leading zero
  if (dot !== int + 1) return false // a leading zero like 01.5: JSON.parse refuses it
  // 0.x: at most five zeros after the point before the first other digit.
  let z = dot + 1
  while (z < end && text.charCodeAt(z) === 48) z++
  return z - dot - 1 <= 5
}

/**
 * Whether some number in a JSON text would change under JSON.parse (too many digits, or a form like
 * `33.0`). Strings are skipped, so a datetime's `52.912` does not count. One pass, no allocation for
 * the common message whose numbers are small integers and short decimals.
 */
function hasInexactNumber(text: string): boolean {
  const n = text.length
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c === 34 /* " */) {
      // To the closing quote: indexOf is native; a quote preceded by an odd run of backslashes is escaped.
      for (;;) {
        const q = text.indexOf('"', i + 1)
        if (q === -1) return false // unterminated: JSON.parse will say so
        let b = q - 1
        while (text.charCodeAt(b) === 92 /* \ */) b--
        i = q
        if ((q - 1 - b) % 2 === 0) break
      }
    } else if (c === 45 /* - */ || (c >= 48 && c <= 57)) {
      const start = i
      let dot = -1
      let exponent = false
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i)
        if (d >= 48 && d <= 57) continue
        if (d === 46 /* . */) dot = i
        else if (d === 101 || d === 69 /* e E */ || d === 43 || d === 45) exponent = true
        else break
      }
      if (!shortExact(text, start, dot, exponent, i) && plainNumber(text.slice(start, i)) === null) return true
      i--
    }
  }
  return false
}

/** How the exact path reads each number: a plain number where that is exact, else bigint or RawJson. */
function exactNumber(text: string): unknown {
  const n = plainNumber(text)
  if (n !== null) return n
  if (/^-?\d+$/.test(text) && !Number.isSafeInteger(Number(text))) return BigInt(text)
  return new RawJson(text)
}

/**
 * JSON where every number keeps what was written. The fast path is JSON.parse; a text with a number
 * JSON.parse would change takes the lossless parser, which gives integers beyond 2^53 as bigint and
 * other such numbers as {@link RawJson}.
 */
export function parseJson(text: string): unknown {
  if (!hasInexactNumber(text)) return JSON.parse(text)
  return losslessParse(text, null, exactNumber)
}

/**
 * JSON.stringify that writes bigint and {@link RawJson} as bare numbers, so a Decimal, a BigInt or a
 * number in a JSON field reaches the peer with every digit and in its form. Every relayed message goes
 * through it: an object's own keys are walked without building entry arrays, and their quoted forms
 * are kept (a message's keys are its model's fields): half the time of the first version.
 */
export function stringifyJson(value: unknown): string {
  if (value === null || value === undefined) return 'null'
  switch (typeof value) {
    case 'bigint':
      return value.toString()
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null'
    case 'string':
      return JSON.stringify(value)
    case 'boolean':
      return value ? 'true' : 'false'
    case 'object': {
      if (value instanceof RawJson) return value.text
      if (Array.isArray(value)) {
        let out = ''
        for (let i = 0; i < value.length; i++) out += (i ? ',' : '') + stringifyJson(value[i])
        return `[${out}]`
      }
      if (value instanceof Date) return JSON.stringify(value.toISOString())
      if (value instanceof Uint8Array) return JSON.stringify(Buffer.from(value).toString('base64'))
      let out = ''
      for (const k in value) {
        if (!hasOwn.call(value, k)) continue
        const v = (value as Record<string, unknown>)[k]
        if (v === undefined) continue
        out += (out ? ',' : '') + quotedKey(k) + ':' + stringifyJson(v)
      }
      return `{${out}}`
    }
    default:
      return 'null'
  }
}

const hasOwn = Object.prototype.hasOwnProperty
/** Keys as JSON strings, kept (bounded: keys are field names, but a JSON field's may be anything). */
const quotedKeys = new Map<string, string>()
function quotedKey(k: string): string {
  let q = quotedKeys.get(k)
  if (q === undefined) {
    q = JSON.stringify(k)
    if (quotedKeys.size < 10_000) quotedKeys.set(k, q)
  }
  return q
}
