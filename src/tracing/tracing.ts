import type { BatchHandler, OutgoingMessage, Outcome } from '../transport/types.js'
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
    // The ESM build's default export holds only the singletons (no ROOT_CONTEXT, SpanKind): take the namespace.
    (m) => ('ROOT_CONTEXT' in m ? m : (m as { default: OtelApi }).default) as OtelApi,
    () => null,
  )
  return api
}

/** The `traceparent` of the span active in the caller's context (the write on the master), or null. */
export async function activeTraceparent(): Promise<string | null> {
  const otel = await otelApi()
  let value: string | null = null
  soft(() => {
    const sc = otel?.trace.getSpanContext(otel.context.active())
    if (sc && otel!.trace.isSpanContextValid(sc)) value = formatTraceparent(sc)
  })
  return value
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
  soft(() => {
    for (const r of rows) {
      const parent = parseTraceparent(r.traceContext)
      const message = byId.get(String(r.id))
      if (!parent || !message) continue
      const ctx = otel.trace.setSpanContext(otel.ROOT_CONTEXT, { ...parent, isRemote: true })
      const attributes = { 'messaging.system': 'rabbitmq', 'messaging.operation.type': 'send', 'messaging.message.id': String(r.id), 'messaging.rabbitmq.destination.routing_key': message.routingKey, cqrs_id: r.cqrsId }
      const span = tracer.startSpan(`cqrs publish ${r.cqrsId}`, { kind: otel.SpanKind.PRODUCER, attributes }, ctx)
      spans.push(span)
      const tp = formatTraceparent(span.spanContext())
      if (tp) message.headers = { ...message.headers, [TRACEPARENT_HEADER]: tp }
    }
  })
  try {
    await publish()
  } catch (e) {
    soft(() => spans.forEach((s) => s.setStatus({ code: otel.SpanStatusCode.ERROR, message: (e as Error).message })))
    throw e
  } finally {
    soft(() => spans.forEach((s) => s.end()))
  }
}

/**
 * Wrap a replica's batch handler: each delivery with a `traceparent` header gets a consumer span,
 * a child of the relay's publish span, that ends when its batch was applied and committed. Retried
 * and dead-lettered messages keep the header, so a later attempt joins the same trace.
 */
export function traceApply(queue: string, handler: BatchHandler): BatchHandler {
  // Batches reach `handler` in the order they came (the consumer applies them in call order, and a
  // transport may hand over the next one early): a traced batch waits for the OpenTelemetry API,
  // and the batches after it queue behind that wait.
  let waiting: Promise<OtelApi | null> | null = null
  return async (batch) => {
    const hasTrace = batch.some((d) => d.headers[TRACEPARENT_HEADER] !== undefined)
    if (!hasTrace && !waiting) return handler(batch)
    const mine = (waiting ?? Promise.resolve(null)).then(() => (hasTrace ? otelApi() : null))
    waiting = mine
    const otel = await mine
    if (waiting === mine) waiting = null
    if (!hasTrace) return handler(batch)
    const tracer = otel?.trace.getTracer('cqrs-sync')
    const traced = batch.map((d) => {
      const parent = parseTraceparent(d.headers[TRACEPARENT_HEADER])
      if (!parent) return null
      // `<cqrs_id>` from the master, `cqrs.<queue>.<cqrs_id>` for a retry or a SYNC to this queue.
      const cqrsId = d.routingKey.startsWith(`cqrs.${queue}.`) ? d.routingKey.slice(`cqrs.${queue}.`.length) : d.routingKey
      let span: Span | null = null
      soft(() => {
        if (!otel || !tracer) return
        const ctx = otel.trace.setSpanContext(otel.ROOT_CONTEXT, { ...parent, isRemote: true })
        const attributes = { 'messaging.system': 'rabbitmq', 'messaging.operation.type': 'process', 'messaging.destination.name': queue, 'messaging.message.id': d.messageId ?? '', cqrs_id: cqrsId, queue }
        span = tracer.startSpan(`cqrs apply ${cqrsId}`, { kind: otel.SpanKind.CONSUMER, attributes }, ctx)
      })
      return { span: span as Span | null, traceparent: formatTraceparent(parent)! }
    })
    let outcomes: Outcome[] | undefined
    try {
      outcomes = await handler(batch)
      return outcomes
    } finally {
      traced.forEach((t, i) => {
        if (!t) return
        const o = outcomes?.[i]
        if (o && o.kind !== 'ack') o.headers[TRACEPARENT_HEADER] = t.traceparent
        if (t.span && otel) endApply(otel, t.span, o)
      })
    }
  }
}

function endApply(otel: OtelApi, span: Span, o: Outcome | undefined): void {
  soft(() => {
    span.setAttribute('outcome', !o ? 'requeued' : o.kind === 'deadLetter' ? 'dead_lettered' : o.kind === 'retry' ? 'retried' : 'ack')
    if (!o || o.kind !== 'ack') span.setStatus({ code: otel.SpanStatusCode.ERROR, message: o ? String(o.headers['x-cqrs-last-error'] ?? o.kind) : 'batch not settled; back to the queue' })
    span.end()
  })
}

/** Tracing never stops a publish or an apply: an SDK or exporter failure leaves that part untraced. */
function soft(fn: () => void): void {
  try {
    fn()
  } catch {
    // Deliberately ignored, see above.
  }
}
