import { silentLogger } from '../../src/core/logger.ts'
import { MemoryBroker, memory } from '../../src/transport/memory/index.ts'
import { transportContract } from './contract.ts'

// A broker per transport would isolate too much: the contract opens several transports per test
// and expects them to see each other, as on RabbitMQ. Unique queue names keep tests apart.
const broker = new MemoryBroker()

transportContract('memory', () => memory({ broker, logger: silentLogger }), {
  cleanup: async (spec) => {
    broker.deleteQueue(spec.queue)
    broker.deleteQueue(`dead_letter_${spec.queue}`)
  },
})
