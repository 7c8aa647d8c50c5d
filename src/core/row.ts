/** A row as Prisma returns it or a serializer builds it: field -> value (both sides use it). */
export type Row = Record<string, unknown>
