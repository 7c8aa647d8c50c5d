import type { CqrsMessage } from '../../src/core/message.js'

/**
 * A django-cqrs message with its nine keys, for tests and benchmarks that publish by hand: the row
 * in `instanceData` (its `id` is the pk), no previous data, no correlation id, first delivery, no
 * expiry, empty meta.
 */
export function cqrsMessage(signal: CqrsMessage['signal_type'], cqrsId: string, instanceData: Record<string, unknown> & { id: number | string | bigint }): CqrsMessage {
  return { signal_type: signal, cqrs_id: cqrsId, instance_data: instanceData, previous_data: null, instance_pk: instanceData.id, correlation_id: null, retries: 0, expires: null, meta: {} }
}
