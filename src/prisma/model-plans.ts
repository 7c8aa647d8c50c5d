import type { ResolvedMasterOptions } from '../config/master-options.js'
import { ConfigError, didYouMean } from '../core/errors.js'
import type { ModelPlan, WireField } from '../master/model-plan.js'
import type { FieldMeta, ModelMeta } from './internals.js'

/** Find a model by client property (`account`) or model name (`Account`). */
export function findModel(metas: Map<string, ModelMeta>, key: string): ModelMeta | undefined {
  return metas.get(key) ?? [...metas.values()].find((m) => m.prop === key || m.name.toLowerCase() === key.toLowerCase())
}

/** Resolve each configured master model against the schema; every mistake is a ConfigError with the fix. */
export function buildPlans(metas: Map<string, ModelMeta>, opts: ResolvedMasterOptions): Map<string, ModelPlan> {
  const plans = new Map<string, ModelPlan>()
  const known = [...metas.values()].map((m) => m.prop)
  const cqrsIds = new Map<string, string>()
  for (const [key, o] of Object.entries(opts.models)) {
    const meta = findModel(metas, key)
    if (!meta) throw new ConfigError(`Unknown model '${key}' in cqrsMaster({ models }); known: ${known.join(', ')}.${didYouMean(key, known)}`, { model: key })
    const field = (name: string, what: string) => {
      const f = meta.fields.find((x) => x.name === name)
      if (!f) {
        const names = meta.fields.map((x) => x.name)
        throw new ConfigError(`Unknown field '${name}' in cqrsMaster({ models: { ${key}: { ${what} } } }); ${meta.name} has: ${names.join(', ')}.${didYouMean(name, names)}`, { model: key, field: name })
      }
      return f
    }
    for (const [fname, what, attr] of [
      [opts.revisionField, 'revision', `Int @default(0) @map("cqrs_revision")`],
      [opts.updatedField, 'update time', `DateTime @updatedAt @map("cqrs_updated")`],
    ] as const) {
      if (!meta.fields.some((f) => f.name === fname))
        throw new ConfigError(`Model ${meta.name} has no ${what} field '${fname}'. A master model needs it: add \`${fname} ${attr}\` to model ${meta.name} in schema.prisma and migrate (or set revisionField/updatedField in cqrsMaster options).`, { model: meta.name })
    }
    const pkName = o.pk ?? (meta.idFields.length === 1 ? meta.idFields[0] : meta.fields.some((f) => f.name === 'id') ? 'id' : undefined)
    if (!pkName) throw new ConfigError(`Cannot tell the primary key of ${meta.name} (composite keys are not supported); set models.${key}.pk to a unique field`, { model: meta.name })
    const pk = field(pkName, 'pk')
    const skip = new Set([opts.revisionField, opts.updatedField])
    const keyOf = wireKeyRule(meta, o.keys)
    const wireField = (f: FieldMeta, key = keyOf(f)): WireField => ({ field: f.name, key, kind: f.kind, ...(f.scale !== undefined ? { scale: f.scale } : {}) })
    let wire: WireField[]
    if (Array.isArray(o.fields)) wire = o.fields.map((n) => wireField(field(n, 'fields')))
    else if (o.fields) wire = Object.entries(o.fields).map(([n, k]) => wireField(field(n, 'fields'), k))
    else wire = meta.fields.filter((f) => !skip.has(f.name)).map((f) => wireField(f))
    // previous_data keys: in the Django mode attribute names (the column: `author_id`), else the field's wire key.
    const tracked = (o.trackedFields ?? []).map((t) => {
      const f = field(t, 'trackedFields')
      return wireField(f, o.keys === 'django' ? f.column : (wire.find((w) => w.field === t)?.key ?? t))
    })
    const clash = cqrsIds.get(o.cqrsId)
    if (clash) throw new ConfigError(`cqrsId '${o.cqrsId}' is used by both ${clash} and ${meta.name}; each model needs its own cqrsId`)
    cqrsIds.set(o.cqrsId, meta.name)
    plans.set(meta.name, {
      model: meta.name,
      cqrsId: o.cqrsId,
      pkField: pk.name,
      pkKind: pk.kind,
      revisionField: opts.revisionField,
      updatedField: opts.updatedField,
      wire,
      kinds: new Map(meta.fields.map((f) => [f.name, f.kind])),
      serializer: o.serializer,
      trackedFields: o.trackedFields ?? [],
      tracked,
      previousData: o.keys === 'django' ? 'changed' : 'all',
      filter: o.filter,
      meta: o.meta,
      produce: o.produce,
    })
  }
  return plans
}

/**
 * How a field is named on the wire. `'django'`: as a django-cqrs master names it, the column name
 * (Django's field names are the columns), except that a foreign key goes under its relation field's
 * name: Django's column for a foreign key `author` is `author_id`, so that suffix comes off; a column
 * named otherwise takes the Prisma relation's name.
 */
function wireKeyRule(meta: ModelMeta, keys: 'field' | 'column' | 'django'): (f: FieldMeta) => string {
  if (keys === 'field') return (f) => f.name
  if (keys === 'column') return (f) => f.column
  const relationOf = new Map<string, string>()
  for (const r of meta.relations) if (r.fields?.length === 1) relationOf.set(r.fields[0], r.name)
  return (f) => {
    const relation = relationOf.get(f.name)
    if (relation === undefined) return f.column
    return f.column.endsWith('_id') && f.column.length > 3 ? f.column.slice(0, -3) : relation
  }
}
