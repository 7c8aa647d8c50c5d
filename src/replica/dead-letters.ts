import { parseJson, stringifyJson } from '../core/json.js'
import { directRoutingKey } from '../transport/queue-names.js'
import { runtime } from '../transport/runtime-transport.js'
import type { DeadLetter, QueueSpec, Transport } from '../transport/types.js'
import { ConfigError } from '../core/errors.js'

/** A dead letter as an operator reads it. */
export interface DeadLetterInfo {
  id: string
  cqrsId: string
  pk: unknown
  signal: string | null
  attempts: number | null
  reason: string | null
  firstError: string | null
  lastError: string | null
  firstFailedAt: string | null
  lastFailedAt: string | null
  body: string
}

/** Which dead letters an operation takes: by id, by cqrs_id, or all. */
export interface DeadLetterSelector {
  ids?: string[]
  cqrsIds?: string[]
  all?: boolean
}

export function describeDeadLetter(d: DeadLetter): DeadLetterInfo {
  let body: Record<string, unknown> | null = null
  try {
    body = parseJson(d.body) as Record<string, unknown>
  } catch {
    // an invalid body is shown as it is
  }
  const h = d.headers
  const str = (k: string) => (h[k] === undefined || h[k] === null ? null : String(h[k]))
  return {
    id: d.id,
    cqrsId: typeof body?.cqrs_id === 'string' ? body.cqrs_id : (d.routingKey.split('.').slice(2).join('.') || '?'),
    pk: body?.instance_pk ?? null,
    signal: typeof body?.signal_type === 'string' ? body.signal_type : null,
    attempts: h['x-cqrs-attempts'] !== undefined ? Number(h['x-cqrs-attempts']) : typeof body?.retries === 'number' ? body.retries + 1 : null,
    reason: str('x-cqrs-reason'),
    firstError: str('x-cqrs-first-error'),
    lastError: str('x-cqrs-last-error'),
    firstFailedAt: str('x-cqrs-first-failed-at'),
    lastFailedAt: str('x-cqrs-last-failed-at'),
    body: d.body,
  }
}

/** The transport's optional dead-letter method, called once the transport is connected. */
function need<K extends 'listDeadLetters' | 'drainDeadLetters'>(t: Transport, method: K): NonNullable<Transport[K]> {
  const rt = runtime(t)
  const fn = rt.inner[method]
  if (typeof fn !== 'function') throw new ConfigError(`the ${t.name} transport cannot ${String(method)}; dead letters need a transport that keeps them (rabbitmq, nats, memory)`)
  return (async (...args: unknown[]) => {
    await rt.connect()
    return (fn as Function).apply(rt.inner, args)
  }) as NonNullable<Transport[K]>
}

export async function listDeadLetters(transport: Transport, spec: QueueSpec, limit: number): Promise<DeadLetterInfo[]> {
  return (await need(transport, 'listDeadLetters')(spec, limit)).map(describeDeadLetter)
}

function matcher(sel: DeadLetterSelector): (d: DeadLetter) => boolean {
  if (!sel.all && !sel.ids?.length && !sel.cqrsIds?.length) throw new ConfigError('say which dead letters: --id <id...>, --cqrs-id <id...> or --all')
  return (d) => {
    if (sel.all) return true
    const info = describeDeadLetter(d)
    return !!sel.ids?.includes(info.id) || !!sel.cqrsIds?.includes(info.cqrsId)
  }
}

/**
 * Send selected dead letters back to the replica queue (`cqrs.<Q>.<cqrs_id>`) with `retries` reset
 * and `expires` cleared, each removed from the dead-letter queue only after its re-publish is confirmed.
 */
export async function retryDeadLetters(transport: Transport, spec: QueueSpec, sel: DeadLetterSelector): Promise<number> {
  return need(transport, 'drainDeadLetters')(spec, matcher(sel), async (d) => {
    const info = describeDeadLetter(d)
    let body = d.body
    try {
      const m = parseJson(d.body) as Record<string, unknown>
      body = stringifyJson({ ...m, retries: 0, expires: null })
    } catch {
      // not JSON: it goes back as it is and will be dead-lettered again with its reason
    }
    await transport.publish([{ routingKey: directRoutingKey(spec.queue, info.cqrsId), body, headers: { 'x-cqrs-retried-dead-letter': info.id } }])
  })
}

/** Remove selected dead letters for good. */
export async function purgeDeadLetters(transport: Transport, spec: QueueSpec, sel: DeadLetterSelector): Promise<number> {
  return need(transport, 'drainDeadLetters')(spec, matcher(sel), async () => {})
}
