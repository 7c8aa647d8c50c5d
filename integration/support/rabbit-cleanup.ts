import { AMQP_URL } from './databases.js'

/** Remove a test queue and its dead-letter and delay queues. */
export async function deleteQueues(queue: string): Promise<void> {
  const amqp = (await import('amqplib')).default
  const conn = await amqp.connect(AMQP_URL)
  const ch = await conn.createChannel()
  for (const q of [queue, `dead_letter_${queue}`, ...[100, 200, 300, 400, 600, 1000, 1500, 3000, 5000, 30000, 120000, 600000].map((d) => `${queue}.retry.${d}`)]) await ch.deleteQueue(q).catch(() => {})
  await conn.close().catch(() => {})
}
