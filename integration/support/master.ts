import { cqrsMaster, installCaptureTriggers } from '../../src/prisma/cqrs-master.js'
import type { MasterOptions } from '../../src/config/master-options.js'

/**
 * `base.$extends(cqrsMaster(options))` as a user of the default sets it up: with trigger capture (the
 * default) the capture triggers are installed first, as the user's migration does
 * (`cqrs triggers --migration`). Re-installing with other options replaces the triggers.
 */
export async function masterClient(base: any, options: MasterOptions): Promise<any> {
  if ((options.capture ?? 'trigger') === 'trigger') await installCaptureTriggers(base, options)
  return base.$extends(cqrsMaster(options))
}
