import { isSafeNumber, parse as losslessParse } from 'lossless-json'

/**
 * JSON with integers beyond 2^53 kept exact. The fast path is JSON.parse; only a text that has a
 * run of 16+ digits takes the lossless parser, which returns such integers as bigint.
 */
const LONG_NUMBER = /[-:[,\s]\d{16,}/

export function parseJson(text: string): unknown {
  if (!LONG_NUMBER.test(text)) return JSON.parse(text)
  return losslessParse(text, null, (value: string) => {
    if (isSafeNumber(value)) return Number(value)
    if (/^-?\d+$/.test(value)) return BigInt(value)
    return Number(value)
  })
}

/** A value written into JSON text as it is (a number too long or too precise for a JS number). */
export class RawJson {
  constructor(readonly text: string) {}
}

/**
 * JSON.stringify that writes bigint and {@link RawJson} as bare numbers, so a Decimal or a BigInt
 * reaches the peer with every digit (django-cqrs reads decimals and big integers as JSON numbers).
 */
export function stringifyJson(value: unknown): string {
  if (value === null || value === undefined) return 'null'
  switch (typeof value) {
    case 'bigint':
      return value.toString()
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null'
    case 'string':
    case 'boolean':
      return JSON.stringify(value)
    case 'object': {
      if (value instanceof RawJson) return value.text
      if (Array.isArray(value)) return `[${value.map(stringifyJson).join(',')}]`
      if (value instanceof Date) return JSON.stringify(value.toISOString())
      let out = ''
      for (const [k, v] of Object.entries(value)) {
        if (v === undefined) continue
        out += `${out ? ',' : ''}${JSON.stringify(k)}:${stringifyJson(v)}`
      }
      return `{${out}}`
    }
    default:
      return 'null'
  }
}
