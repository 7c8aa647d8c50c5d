import { silentLogger } from '../../src/core/logger.js'
import { MemoryBroker, memory } from '../../src/transport/memory/index.js'
import { transportContract } from './contract.js'

// A broker per transport would isolate too much: the contract opens several transports per test
// and expects them to see each other, as on RabbitMQ. Unique queue names keep tests apart.
const broker = new MemoryBroker()

transportContract('memory', () => memory({ broker, logger: silentLogger }), {
  cleanup: async (spec) => {
    broker.deleteQueue(spec.queue)
    broker.deleteQueue(`dead_letter_${spec.queue}`)
  },
})
