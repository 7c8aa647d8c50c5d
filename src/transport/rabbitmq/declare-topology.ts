import type { Channel } from 'amqplib'
import type { TopologyPlan } from './topology.js'

/** The slice of an amqplib channel that declaring a plan uses (a plain object will do in tests). */
export type DeclaringChannel = Pick<Channel, 'assertExchange' | 'assertQueue' | 'bindQueue'>

/**
 * Declare a {@link TopologyPlan} on a channel: exchanges, then queues, then bindings. Every step is
 * idempotent, so this runs again on each reconnect (rabbitmq-client style). Within a step the
 * requests are pipelined: amqplib sends them in order on the channel.
 */
export async function declareTopology(channel: DeclaringChannel, plan: TopologyPlan): Promise<void> {
  await Promise.all(plan.exchanges.map((e) => channel.assertExchange(e.name, e.type, { durable: e.durable })))
  await Promise.all(plan.queues.map((q) => channel.assertQueue(q.name, { durable: q.durable, arguments: q.arguments })))
  await Promise.all(plan.bindings.map((b) => channel.bindQueue(b.queue, b.exchange, b.routingKey, b.arguments)))
}
