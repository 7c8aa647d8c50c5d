/**
 * The services the tests need, and which of them the test setup starts with testcontainers.
 * The decision is a pure function ({@link servicesToStart}, unit-tested in test/test-services.test.ts);
 * integration/support/global-setup.ts probes the machine and does the starting.
 */

export type Service = 'postgresql' | 'mysql' | 'rabbitmq'

/** Each service's env variable and the local default the suite uses when it is unset. */
export const SERVICES: Record<Service, { env: string; defaultUrl: string }> = {
  postgresql: { env: 'DATABASE_URL', defaultUrl: 'postgresql://postgres@127.0.0.1:5432/test' },
  mysql: { env: 'MYSQL_URL', defaultUrl: 'mysql://root@127.0.0.1:3306/test' },
  rabbitmq: { env: 'AMQP_URL', defaultUrl: 'amqp://guest:guest@127.0.0.1:5672' },
}

/** The URL the suite uses for `service`: env first, else the local default. */
export const serviceUrl = (service: Service, env: NodeJS.ProcessEnv = process.env): string => env[SERVICES[service].env] || SERVICES[service].defaultUrl

export interface ServicePlan {
  /** Services to start in containers (their URLs then go into env). */
  start: Service[]
  /** One line per service that will not work, saying why and what to do. */
  missing: string[]
}

/**
 * Which services to start: a service is needed when its dialect is tested (RabbitMQ always); a URL
 * in env always wins (it is never replaced, even when it does not answer); a default that answers
 * is used; otherwise it is started when Docker is there, and reported missing when not.
 */
export function servicesToStart(input: { env: NodeJS.ProcessEnv; reachable: ReadonlySet<Service>; docker: boolean }): ServicePlan {
  const dialects = (input.env.CQRS_TEST_DIALECTS ?? 'postgresql,mysql,sqlite').split(',').map((d) => d.trim())
  const needed = (['postgresql', 'mysql', 'rabbitmq'] as const).filter((s) => s === 'rabbitmq' || dialects.includes(s))
  const plan: ServicePlan = { start: [], missing: [] }
  for (const s of needed) {
    if (input.env[SERVICES[s].env] || input.reachable.has(s)) continue
    if (input.docker) plan.start.push(s)
    else plan.missing.push(`${s}: nothing answers at ${SERVICES[s].defaultUrl} and there is no Docker to start it; start it (docker compose up -d ${s === 'postgresql' ? 'postgres' : s === 'mysql' ? 'mariadb' : 'rabbitmq'}), or set ${SERVICES[s].env}`)
  }
  return plan
}
