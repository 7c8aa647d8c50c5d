import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node'

// NATS headers are strings; the seam's are strings and numbers (django-cqrs peers and our own
// `x-cqrs-attempts` use numbers). Numbers travel as text, and their names in one header.

/** Our bookkeeping headers: never handed to a consumer as the message's own. */
export const H = {
  messageId: 'Cqrs-Message-Id',
  numeric: 'Cqrs-Numeric',
  retryAt: 'Cqrs-Retry-At',
  natsMsgId: 'Nats-Msg-Id',
} as const

const internal = new Set<string>(Object.values(H))

/** NATS headers for `values`, plus our message id when there is one. */
export function encodeHeaders(values: Record<string, string | number> = {}, messageId?: string): MsgHdrs {
  const h = natsHeaders()
  const numeric: string[] = []
  for (const [k, v] of Object.entries(values)) {
    if (internal.has(k)) continue
    if (typeof v === 'number') numeric.push(k)
    h.set(k, String(v))
  }
  if (numeric.length) h.set(H.numeric, numeric.join(','))
  if (messageId !== undefined) h.set(H.messageId, messageId)
  return h
}

/** The message's own headers (numbers restored) and its message id. */
export function decodeHeaders(h: MsgHdrs | undefined): { headers: Record<string, string | number>; messageId?: string } {
  const headers: Record<string, string | number> = {}
  if (!h) return { headers }
  const numeric = new Set((h.get(H.numeric) || '').split(',').filter(Boolean))
  for (const k of h.keys()) {
    if (internal.has(k)) continue
    const v = h.get(k)
    headers[k] = numeric.has(k) && v !== '' && Number.isFinite(Number(v)) ? Number(v) : v
  }
  const messageId = h.get(H.messageId) || undefined
  return { headers, messageId }
}
