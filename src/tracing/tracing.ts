import type { OutgoingMessage, BatchHandler, Outcome } from '../transport/types.js'
import { formatTraceparent, parseTraceparent } from './traceparent.js'

type OtelApi = typeof import('@opentelemetry/api')
type Span = import('@opentelemetry/api').Span

/** The AMQP header and outbox value: W3C `traceparent`. django-cqrs peers ignore unknown headers. */
export const TRACEPARENT_HEADER = 'traceparent'

let api: Promise<OtelApi | null> | null = null

/**
 * `@opentelemetry/api`, imported on first use, or null when it is not installed: traces are an
 * optional peer, and without it nothing is loaded and nothing changes. Without an SDK registered by
 * the application the API is a no-op and no trace context is stored.
 */
export function otelApi(): Promise<OtelApi | null> {
  api ??= import('@opentelemetry/api').then(
    (m) => ((m as { default?: OtelApi }).default ?? m) as OtelApi,
    () => null,
  )
  return api
}

/** The `traceparent` of the span active in the caller's context (the write on the master), or null. */
export async function activeTraceparent(): Promise<string | null> {
  const otel = await otelApi()
  const sc = otel?.trace.getSpanContext(otel.context.active())
  return sc && otel!.trace.isSpanContextValid(sc) ? formatTraceparent(sc) : null
}

/**
 * Run `publish` with a producer span per message whose outbox row carried a trace context (a child of
 * the write's span), and send each span's `traceparent` as the message's header so the replica's
 * apply joins the same trace. Spans end when the broker confirmed (or refused) the batch.
 */
export async function tracePublish(rows: Array<{ id: bigint | number; cqrsId: string; traceContext?: string | null }>, messages: OutgoingMessage[], publish: () => Promise<void>): Promise<void> {
  if (!rows.some((r) => r.traceContext)) return publish()
  const otel = await otelApi()
  if (!otel) return publish()
  const tracer = otel.trace.getTracer('cqrs-sync')
  const byId = new Map(messages.map((m) => [m.messageId, m]))
  const spans: Span[] = []
  for (const r of rows) {
    const parent = parseTraceparent(r.traceContext)
    const message = byId.get(String(r.id))
    if (!parent || !message) continue
    const ctx = otel.trace.setSpanContext(otel.ROOT_CONTEXT, { ...parent, isRemote: true })
    const span = tracer.startSpan(`cqrs publish ${r.cqrsId}`, { kind: otel.SpanKind.PRODUCER, attributes: { 'messaging.system': 'rabbitmq', 'messaging.operation.type': 'send', 'messaging.message.id': String(r.id), cqrs_id: r.cqrsId, 'messaging.rabbitmq.destination.routing_key': message.routingKey } }, ctx)
    spans.push(span)
    const tp = formatTraceparent(span.spanContext())
    if (tp) message.headers = { ...message.headers, [TRACEPARENT_HEADER]: tp }
  }
  try {
    await publish()
  } catch (e) {
    for (const s of spans) s.setStatus({ code: otel.SpanStatusCode.ERROR, message: (e as Error).message })
    throw e
  } finally {
    for (const s of spans) s.end()
  }
}

/**
 * Wrap a replica's batch handler: each delivery with a `traceparent` header gets a consumer span,
 * a child of the relay's publish span, that ends when its batch was applied and committed. Retried
 * and dead-lettered messages keep the header, so a later attempt joins the same trace.
 */
export function traceApply(queue: string, handler: BatchHandler): BatchHandler {
  return async (batch) => {
    const otel = await otelApi()
    if (!otel || !batch.some((d) => d.headers[TRACEPARENT_HEADER] !== undefined)) return handler(batch)
    const tracer = otel.trace.getTracer('cqrs-sync')
    const spans = batch.map((d) => {
      const parent = parseTraceparent(d.headers[TRACEPARENT_HEADER])
      if (!parent) return null
      // `<cqrs_id>` from the master, `cqrs.<queue>.<cqrs_id>` for a retry or a SYNC to this queue.
      const cqrsId = d.routingKey.startsWith(`cqrs.${queue}.`) ? d.routingKey.slice(`cqrs.${queue}.`.length) : d.routingKey
      const ctx = otel.trace.setSpanContext(otel.ROOT_CONTEXT, { ...parent, isRemote: true })
      return tracer.startSpan(`cqrs apply ${cqrsId}`, { kind: otel.SpanKind.CONSUMER, attributes: { 'messaging.system': 'rabbitmq', 'messaging.operation.type': 'process', 'messaging.destination.name': queue, 'messaging.message.id': d.messageId ?? '', cqrs_id: cqrsId, queue } }, ctx)
    })
    let outcomes: Outcome[] | undefined
    try {
      outcomes = await handler(batch)
      return outcomes
    } finally {
      spans.forEach((span, i) => {
        if (!span) return
        const o = outcomes?.[i]
        span.setAttribute('outcome', o ? (o.kind === 'deadLetter' ? 'dead_lettered' : o.kind === 'retry' ? 'retried' : 'ack') : 'requeued')
        if (!o || o.kind !== 'ack') span.setStatus({ code: otel.SpanStatusCode.ERROR, message: o ? String(o.headers['x-cqrs-last-error'] ?? o.kind) : 'batch not settled; back to the queue' })
        if (o && o.kind !== 'ack') o.headers[TRACEPARENT_HEADER] = String(batch[i].headers[TRACEPARENT_HEADER])
        span.end()
      })
    }
  }
}
