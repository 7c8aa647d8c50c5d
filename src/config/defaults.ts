/**
 * The defaults shared by the library's options and the CLI's flags, so `cqrs relay` and an
 * in-process relay (or `cqrs consume` and `cqrsReplica()`) behave alike unless told otherwise.
 */
export const DEFAULTS = {
  relay: {
    /** Outbox rows per claim: one transaction, one confirm wait. */
    batchSize: 1000,
    /**
     * How often an idle relay looks for rows other processes wrote. An in-process relay is also woken
     * by its own commits; `cqrs relay` only polls, so this bounds its added latency.
     */
    pollIntervalMs: 200,
    /**
     * When commits arrive while a batch is out, the next batch starts at least this long after it
     * started, and takes them all: at a steady moderate rate a relay otherwise sends batches of one or
     * two events, each with its claim, publish and confirm wait (see Relay's gatherMs).
     */
    gatherMs: 5,
  },
  replica: {
    /** Unacked messages per worker. */
    prefetch: 1000,
    /** Messages applied per transaction. */
    batchSize: 200,
  },
} as const
