import type { CqrsMessage } from './message.js'

/** What a replica's row hook or custom handler gets besides the data (shared by the options and the consumer). */
export interface HandlerContext {
  /** A Prisma client bound to the apply transaction: write through it so the write and the version gate commit together. */
  tx: any
  message: CqrsMessage
  cqrsId: string
  pk: unknown
  revision: number
  previousData: Record<string, unknown> | null
  meta: Record<string, unknown> | null
}
