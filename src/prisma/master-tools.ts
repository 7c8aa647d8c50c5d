import { resolveMasterOptions, type MasterOptions, type ResolvedMasterOptions } from '../config/master-options.js'
import { ConfigError, didYouMean } from '../core/errors.js'
import type { BuildContext } from '../master/event-builder.js'
import type { ModelPlan } from '../master/model-plan.js'
import { offlineTransport } from '../transport/offline-transport.js'
import type { Transport } from '../transport/types.js'
import { modelsOf } from './internals.js'
import { buildPlans, findModel } from './model-plans.js'
import { RowScanner } from './row-scanner.js'

/** The `master` section of `cqrs.config.ts`: master options with the client, the transport optional. */
export type MasterSection = Omit<MasterOptions, 'transport'> & { prisma: any; transport?: Transport }

/** One replicated master model, ready for the operating tools (dump, sync, diffs). */
export interface MasterModel {
  prisma: any
  plan: ModelPlan
  options: ResolvedMasterOptions
  /** Reads the model's rows in primary-key order (keyset pages, or COPY on PostgreSQL). */
  source: RowScanner
  /** The master section's own transport, if it has one. */
  transport?: Transport
  /** What the event builder needs to render a row as the master would send it. */
  buildContext(operation: string): BuildContext
}

/** The master side of the operating tools; `close()` ends every reader it opened (not the client). */
export interface MasterTools {
  options: ResolvedMasterOptions
  /** The cqrs_ids the master replicates. */
  cqrsIds: string[]
  /** The model replicated as `cqrsId`; an unknown id is a ConfigError naming the known ones. */
  model(cqrsId: string): MasterModel
  close(): Promise<void>
}

/**
 * Resolve a master section for the tools: options validated as `cqrsMaster()` does, each model
 * planned against the Prisma schema. `where` names the section in messages (the config's path).
 */
export function openMasterTools(section: MasterSection, where = 'cqrs.config.ts'): MasterTools {
  const { prisma, transport, ...rest } = section
  const options = resolveMasterOptions({ ...rest, transport: transport ?? offlineTransport }, `${where} master`)
  const metas = modelsOf(prisma)
  const plans = [...buildPlans(metas, options).values()]
  const opened: RowScanner[] = []
  return {
    options,
    cqrsIds: plans.map((p) => p.cqrsId),
    model(cqrsId) {
      const plan = plans.find((p) => p.cqrsId === cqrsId)
      if (!plan) {
        const known = plans.map((p) => p.cqrsId)
        throw new ConfigError(`Unknown cqrs_id '${cqrsId}': the master models in ${where} replicate ${known.join(', ')}.${didYouMean(cqrsId, known)}`)
      }
      const source = new RowScanner(prisma, findModel(metas, plan.model)!, { pkField: plan.pkField, revisionField: plan.revisionField })
      opened.push(source)
      return {
        prisma,
        plan,
        options,
        source,
        transport,
        buildContext: (operation) => ({
          tx: prisma,
          model: plan.model,
          operation,
          correlationId: null,
          expires: options.expiresInMs ? new Date(Date.now() + options.expiresInMs).toISOString() : null,
        }),
      }
    },
    async close() {
      await Promise.all(opened.splice(0).map((s) => s.close()))
    },
  }
}
