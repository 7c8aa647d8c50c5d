import type { ResolvedMasterOptions, Row } from '../config/master-options.js'
import { ConfigError } from '../core/errors.js'
import { deleteEvent, eventForWrite, type BuildContext } from '../master/event-builder.js'
import type { ModelPlan, OutboxEvent } from '../master/model-plan.js'
import { clientInTransaction, queryInTransaction, type ModelMeta, type Provider, type TransactionDescriptor } from './internals.js'
import { withTraceContext } from './outbox-trace.js'

export const WRITE_OPERATIONS = new Set(['create', 'createMany', 'createManyAndReturn', 'update', 'updateMany', 'updateManyAndReturn', 'upsert', 'delete', 'deleteMany'])

/** The argument of a `$allOperations` hook. */
export interface HookArg {
  model: string
  operation: string
  args: any
  query: (args: any, params?: any) => Promise<any>
  __internalParams?: any
}

const NESTED_OK_ON_OWNING_SIDE = new Set(['connect', 'disconnect'])

/**
 * Runs one write on a master model inside a transaction and writes its events to the outbox in the
 * same transaction. The revision rises in the same statement as the update (`increment: 1`; with
 * trigger capture, the `BEFORE UPDATE` trigger raises it where it can: {@link Capture.triggerBump}).
 */
export class Capture {
  constructor(
    private readonly client: any,
    private readonly provider: Provider,
    private readonly metas: Map<string, ModelMeta>,
    private readonly plans: Map<string, ModelPlan>,
    private readonly outbox: ModelMeta,
    private readonly opts: ResolvedMasterOptions,
  ) {}

  async run(a: HookArg, plan: ModelPlan, t: TransactionDescriptor): Promise<unknown> {
    this.refuseNestedWrites(a, plan)
    const tx = clientInTransaction(this.client, t)
    const ctx: BuildContext = { tx, model: a.model, operation: a.operation, correlationId: null, expires: null }
    ctx.correlationId = this.opts.correlationId?.(ctx) ?? null
    ctx.expires = this.opts.expiresInMs ? new Date(Date.now() + this.opts.expiresInMs).toISOString() : null
    const events: OutboxEvent[] = []
    const save = async (row: Row, prev: Row | null | undefined, created: boolean) => {
      const e = await eventForWrite(plan, row, ctx, prev, created)
      if (e) events.push(e)
    }
    const model = tx[this.metas.get(plan.model)!.prop]
    const args = a.args ?? {}
    const pk = plan.pkField
    let result: unknown
    switch (a.operation) {
      case 'create': {
        const w = this.widen(plan, args)
        const row = await queryInTransaction(a, w.args, t)
        await save(row, null, true)
        result = w.strip(row)
        break
      }
      case 'createManyAndReturn': {
        const w = this.widen(plan, args)
        const rows: Row[] = await queryInTransaction(a, w.args, t)
        for (const r of rows) await save(r, null, true)
        result = rows.map(w.strip)
        break
      }
      case 'createMany': {
        const data: Row[] = Array.isArray(args.data) ? args.data : [args.data]
        let rows: Row[]
        if (this.provider !== 'mysql') rows = await model.createManyAndReturn({ data, skipDuplicates: args.skipDuplicates })
        else rows = await this.createEach(model, data, !!args.skipDuplicates)
        for (const r of rows) await save(r, null, true)
        result = { count: rows.length }
        break
      }
      case 'update': {
        const prev = await this.previous(model, plan, args.where, true)
        const w = this.widen(plan, { ...args, data: this.bump(plan, args.data) })
        const row = await queryInTransaction(a, w.args, t)
        await save(row, prev, false)
        result = w.strip(row)
        break
      }
      case 'upsert': {
        const prev = plan.trackedFields.length || plan.filter ? await model.findUnique({ where: args.where }) : undefined
        const w = this.widen(plan, { ...args, update: this.bump(plan, args.update) })
        const row = await queryInTransaction(a, w.args, t)
        await save(row, prev, prev === null)
        result = w.strip(row)
        break
      }
      case 'updateMany':
      case 'updateManyAndReturn': {
        const before: Row[] = await model.findMany({ where: args.where, take: args.limit, select: this.selectOf(plan, [pk, ...plan.trackedFields]) })
        const prevByPk = new Map(before.map((r) => [String(r[pk]), r]))
        const where = { AND: [args.where ?? {}, { [pk]: { in: before.map((r) => r[pk]) } }] }
        let rows: Row[]
        if (a.operation === 'updateManyAndReturn') {
          const w = this.widen(plan, { ...args, where, limit: undefined, data: this.bump(plan, args.data) })
          rows = await queryInTransaction(a, w.args, t)
          for (const r of rows) await save(r, prevByPk.get(String(r[pk])), false)
          result = rows.map(w.strip)
        } else {
          if (before.length === 0) {
            result = { count: 0 }
            break
          }
          if (this.provider !== 'mysql') rows = await model.updateManyAndReturn({ where, data: this.bump(plan, args.data) })
          else {
            await model.updateMany({ where, data: this.bump(plan, args.data) })
            rows = await model.findMany({ where: { [pk]: { in: before.map((r) => r[pk]) } } })
          }
          for (const r of rows) await save(r, prevByPk.get(String(r[pk])), false)
          result = { count: rows.length }
        }
        break
      }
      case 'delete': {
        const w = this.widen(plan, args)
        const row = await queryInTransaction(a, w.args, t)
        events.push(deleteEvent(plan, row, ctx))
        result = w.strip(row)
        break
      }
      case 'deleteMany': {
        const rows: Row[] = await model.findMany({ where: args.where, take: args.limit })
        if (rows.length) await model.deleteMany({ where: { AND: [args.where ?? {}, { [pk]: { in: rows.map((r) => r[pk]) } }] } })
        for (const r of rows) events.push(deleteEvent(plan, r, ctx))
        result = { count: rows.length }
        break
      }
      default:
        return queryInTransaction(a, args, t)
    }
    if (plan.produce && events.length) await tx[this.outbox.prop].createMany({ data: await withTraceContext(events, this.outbox) })
    return result
  }

  /**
   * With capture triggers, the hook only raises the revision in the statement itself (so the row
   * Prisma returns carries it). SQLite triggers cannot raise it, so nested writes stay refused there.
   */
  triggerArgs(a: HookArg, plan: ModelPlan): any {
    if (this.provider === 'sqlite') this.refuseNestedWrites(a, plan)
    const args = a.args ?? {}
    switch (a.operation) {
      case 'update':
      case 'updateMany':
      case 'updateManyAndReturn':
        return { ...args, data: this.triggerBump(plan, args.data) }
      case 'upsert':
        return { ...args, update: this.triggerBump(plan, args.update) }
      default:
        return args
    }
  }

  /**
   * Trigger capture: on PostgreSQL and MySQL the capture's `BEFORE UPDATE` trigger raises the revision
   * of every row whose statement did not, and the row Prisma returns carries it. So an update that
   * sets a column of the model is left as it is: Prisma spends about 30 µs less CPU on it than with an
   * `increment` (`bench/profile/master-update.ts`), and PostgreSQL no more (the trigger's bump costs
   * nothing measurable next to its outbox row). The increment stays where the statement might not
   * update the row at all (no column set: an empty upsert update, relation writes only), where the
   * write sets the revision itself (it is replaced, as before), and on SQLite, whose triggers cannot
   * assign NEW.
   */
  private triggerBump(plan: ModelPlan, data: Row | undefined): Row {
    if (this.provider === 'sqlite' || !data || plan.revisionField in data) return this.bump(plan, data)
    for (const key of Object.keys(data)) if (plan.kinds.has(key) && data[key] !== undefined) return data
    return this.bump(plan, data)
  }

  /** Old values of tracked fields (previous_data); skipped when nothing is tracked. */
  private async previous(model: any, plan: ModelPlan, where: unknown, unique: boolean): Promise<Row | null | undefined> {
    if (!plan.trackedFields.length) return undefined
    const select = this.selectOf(plan, plan.trackedFields)
    return unique ? model.findUnique({ where, select }) : model.findFirst({ where, select })
  }

  private selectOf(_plan: ModelPlan, fields: string[]): Record<string, true> {
    return Object.fromEntries(fields.map((f) => [f, true]))
  }

  private bump(plan: ModelPlan, data: Row | undefined): Row {
    return { ...(data ?? {}), [plan.revisionField]: { increment: 1 } }
  }

  /** MySQL has no createManyAndReturn: insert one by one inside the same transaction. */
  private async createEach(model: any, data: Row[], skipDuplicates: boolean): Promise<Row[]> {
    const rows: Row[] = []
    for (const d of data) {
      try {
        rows.push(await model.create({ data: d }))
      } catch (e) {
        if (!(skipDuplicates && (e as { code?: string }).code === 'P2002')) throw e
      }
    }
    return rows
  }

  /**
   * The capture needs every scalar field of the row; a user's `select`/`omit` may hide some.
   * Widen the query, then strip what the user did not ask for from the result.
   */
  private widen(plan: ModelPlan, args: any): { args: any; strip: (r: any) => any } {
    if (!args.select && !args.omit) return { args, strip: (r) => r }
    const all = [...plan.kinds.keys()]
    if (args.select) {
      const added = all.filter((f) => !args.select[f])
      const select = { ...args.select, ...Object.fromEntries(added.map((f) => [f, true])) }
      return { args: { ...args, select }, strip: (r) => (r ? omitKeys(r, added) : r) }
    }
    const omitted = Object.entries(args.omit).filter(([, v]) => v).map(([k]) => k)
    return { args: { ...args, omit: undefined }, strip: (r) => (r ? omitKeys(r, omitted) : r) }
  }

  /** Nested writes into a master model from another query cannot be captured: refuse them loudly (G5). */
  private refuseNestedWrites(a: HookArg, plan: ModelPlan): void {
    const meta = this.metas.get(plan.model)
    if (!meta) return
    const payloads = [a.args?.data, a.args?.create, a.args?.update].flatMap((d) => (Array.isArray(d) ? d : d ? [d] : []))
    for (const data of payloads) {
      for (const rel of meta.relations) {
        const nested = data[rel.name]
        if (!nested || typeof nested !== 'object' || !this.plans.has(rel.type)) continue
        const ops = Object.keys(nested).filter((op) => rel.isList || !NESTED_OK_ON_OWNING_SIDE.has(op))
        if (ops.length)
          throw new ConfigError(
            `cqrs-sync cannot capture the nested write '${rel.name}: { ${ops.join(', ')} }' in ${a.model}.${a.operation}: it changes ${rel.type} rows, a master model, without an event. ` +
              `Write them with prisma.${this.metas.get(rel.type)?.prop}.${'create/update/delete'} (inside $transaction if they must be atomic).`,
            { model: a.model, relation: rel.name },
          )
      }
    }
  }
}

function omitKeys(r: Row, keys: string[]): Row {
  const out = { ...r }
  for (const k of keys) delete out[k]
  return out
}
