import { MessageValidationError } from './errors.js'
import { parseJson, stringifyJson } from './json.js'

export type SignalType = 'SAVE' | 'DELETE' | 'SYNC'
export const SIGNAL_TYPES: readonly SignalType[] = ['SAVE', 'DELETE', 'SYNC']

/** The wire message of PROTOCOL.md: always these nine keys. */
export interface CqrsMessage {
  signal_type: SignalType
  cqrs_id: string
  /** The row: field -> value, plus `cqrs_revision` and `cqrs_updated`. */
  instance_data: Record<string, unknown>
  previous_data: Record<string, unknown> | null
  instance_pk: string | number | bigint
  correlation_id: string | null
  retries: number
  expires: string | null
  meta: Record<string, unknown> | null
}

/** Serialise a message: key order as django-cqrs writes it, big numbers exact. */
export function encodeMessage(m: CqrsMessage): string {
  return stringifyJson({
    signal_type: m.signal_type,
    cqrs_id: m.cqrs_id,
    instance_data: m.instance_data,
    previous_data: m.previous_data,
    instance_pk: m.instance_pk,
    correlation_id: m.correlation_id,
    retries: m.retries,
    expires: m.expires,
    meta: m.meta,
  })
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Parse and check a message body. Accepts extra keys and missing optional ones (PROTOCOL.md);
 * throws {@link MessageValidationError} naming the first thing wrong.
 */
export function decodeMessage(body: string | Buffer): CqrsMessage {
  const text = typeof body === 'string' ? body : body.toString('utf8')
  let raw: unknown
  try {
    raw = parseJson(text)
  } catch (e) {
    throw new MessageValidationError(`message body is not valid JSON (${(e as Error).message}); first bytes: ${JSON.stringify(text.slice(0, 80))}`)
  }
  if (!isObject(raw)) throw new MessageValidationError(`message body must be a JSON object, got ${Array.isArray(raw) ? 'an array' : typeof raw}`)
  const signal = raw.signal_type
  if (typeof signal !== 'string' || !SIGNAL_TYPES.includes(signal as SignalType)) invalid(raw, `signal_type must be one of SAVE, DELETE, SYNC; got ${JSON.stringify(signal)}`)
  if (typeof raw.cqrs_id !== 'string' || raw.cqrs_id === '') invalid(raw, `cqrs_id must be a non-empty string; got ${JSON.stringify(raw.cqrs_id)}`)
  if (!isObject(raw.instance_data)) invalid(raw, 'instance_data must be an object')
  const data = raw.instance_data as Record<string, unknown>
  let pk = raw.instance_pk
  if (pk === undefined || pk === null) pk = data.id
  if (typeof pk !== 'string' && typeof pk !== 'number' && typeof pk !== 'bigint') invalid(raw, `instance_pk must be a string or a number; got ${JSON.stringify(pk)}`)
  const rev = data.cqrs_revision
  if (rev !== undefined && (typeof rev !== 'number' || !Number.isInteger(rev) || rev < 0)) invalid(raw, `instance_data.cqrs_revision must be a non-negative integer; got ${JSON.stringify(rev)}`)
  if (raw.previous_data != null && !isObject(raw.previous_data)) invalid(raw, 'previous_data must be an object or null')
  if (raw.meta != null && !isObject(raw.meta)) invalid(raw, 'meta must be an object or null')
  const retries = raw.retries ?? 0
  if (typeof retries !== 'number' || !Number.isInteger(retries) || retries < 0) invalid(raw, `retries must be a non-negative integer; got ${JSON.stringify(retries)}`)
  if (raw.expires != null && (typeof raw.expires !== 'string' || Number.isNaN(Date.parse(normalizeDateTime(raw.expires as string))))) invalid(raw, `expires must be an ISO 8601 datetime or null; got ${JSON.stringify(raw.expires)}`)
  if (raw.correlation_id != null && typeof raw.correlation_id !== 'string') invalid(raw, 'correlation_id must be a string or null')
  return {
    signal_type: signal as SignalType,
    cqrs_id: raw.cqrs_id as string,
    instance_data: data,
    previous_data: (raw.previous_data as Record<string, unknown> | null) ?? null,
    instance_pk: pk as string | number | bigint,
    correlation_id: (raw.correlation_id as string | null) ?? null,
    retries: retries as number,
    expires: (raw.expires as string | null) ?? null,
    meta: (raw.meta as Record<string, unknown> | null) ?? null,
  }
}

function invalid(raw: Record<string, unknown>, what: string): never {
  throw new MessageValidationError(`invalid message: ${what}`, { cqrsId: raw.cqrs_id, pk: raw.instance_pk })
}

/** The revision a message carries (0 when a peer left it out). */
export const revisionOf = (m: CqrsMessage): number => (m.instance_data.cqrs_revision as number | undefined) ?? 0

/** django-cqrs writes `2026-11-23 03:36:52.912512+00:00`; Date.parse wants a `T`. */
export function normalizeDateTime(s: string): string {
  return s.length > 10 && s[10] === ' ' ? `${s.slice(0, 10)}T${s.slice(11)}` : s
}
