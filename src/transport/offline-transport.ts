import { ConfigError } from '../core/errors.js'
import type { Transport } from './types.js'

/**
 * Stands in for a transport where the work needs none: validating master options, or reading and
 * writing replica tables (dump, load, diffs). Publishing or consuming through it is a ConfigError.
 */
export const offlineTransport: Transport = {
  name: 'offline',
  connect: async () => {},
  publish: async () => {
    throw new ConfigError('this command does not publish')
  },
  consume: async () => {
    throw new ConfigError('this command does not consume')
  },
  close: async () => {},
}
