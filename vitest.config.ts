import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'integration/**/*.test.ts'],
    // Starts PostgreSQL, MariaDB or RabbitMQ in containers when none answers and Docker is there.
    globalSetup: ['integration/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration files create their own databases and queues, so files may run in parallel;
    // two workers fit the 2-core machine.
    maxWorkers: 2,
    fileParallelism: true,
  },
})
