/**
 * The cqrs.config.ts used by CLI subprocess tests: everything comes from env, so one file serves
 * every dialect, database and queue. Set CQRS_CONFIG to this file and:
 *   CQRS_TEST_DIALECT   postgresql | mysql | sqlite (both sides)
 *   CQRS_MASTER_URL     master database URL (optional: no master section without it)
 *   CQRS_REPLICA_URL    replica database URL (optional: no replica section without it)
 *   CQRS_QUEUE          replica queue name
 *   CQRS_ID_SUFFIX      appended to every cqrs_id, so parallel tests on one broker do not meet
 *   CQRS_TRANSPORT      rabbitmq (default) or nats; memory is not supported across processes
 *   AMQP_URL            RabbitMQ (default local)
 *   NATS_URL            NATS (default local); CQRS_NATS_ACK_WAIT_MS its ack wait (redelivery after a kill)
 *   CQRS_AUTHOR_KEYS    'column': the master sends author rows keyed by column name, like django-cqrs
 *   CQRS_FAIL_NAME      a replica hook fails for author rows whose name starts with this text
 */
// The package by name, as a user's config imports it: the same (built) modules as the CLI that loads
// this file, so a NonRetryableError thrown here is the class the consumer checks for.
import { adapterFromUrl, defineConfig, NonRetryableError } from 'cqrs-sync'
import { rabbitmq } from 'cqrs-sync/rabbitmq'

const env = process.env
const dialect = env.CQRS_TEST_DIALECT ?? 'postgresql'
const suffix = env.CQRS_ID_SUFFIX ?? ''
const id = (name: string) => `${name}${suffix}`

async function client(url: string) {
  const { PrismaClient } = await import(`../../prisma/generated/${dialect}/client.ts`)
  return new PrismaClient({ adapter: await adapterFromUrl(url) })
}

export default defineConfig({
  // The NATS client is loaded only when asked for, so the other CLI tests start as fast as before.
  transport: async () =>
    env.CQRS_TRANSPORT === 'nats'
      ? (await import('cqrs-sync/nats')).nats({ servers: env.NATS_URL, connectionName: `cqrs-test-cli-${process.pid}`, ackWaitMs: Number(env.CQRS_NATS_ACK_WAIT_MS ?? 30_000) })
      : rabbitmq({ url: env.AMQP_URL, connectionName: `cqrs-test-cli-${process.pid}` }),
  master: env.CQRS_MASTER_URL
    ? async () => ({
        prisma: await client(env.CQRS_MASTER_URL!),
        models: {
          // CQRS_AUTHOR_KEYS=column: instance_data keyed by column (`birth_date`), as the django-cqrs captures are.
          author: { cqrsId: id('author'), ...(env.CQRS_AUTHOR_KEYS === 'column' ? { keys: 'column' as const } : {}) },
          book: { cqrsId: id('book'), keys: 'column' as const, fields: { id: 'id', title: 'title', authorId: 'author', price: 'price', publishedAt: 'published_at', isPublic: 'is_public' } },
          tag: { cqrsId: id('tag') },
          setting: { cqrsId: id('setting') },
          ledger: { cqrsId: id('ledger') },
        },
      })
    : undefined,
  replica: env.CQRS_REPLICA_URL
    ? async () => ({
        prisma: await client(env.CQRS_REPLICA_URL!),
        queue: env.CQRS_QUEUE ?? 'replica',
        retry: { maxRetries: Number(env.CQRS_MAX_RETRIES ?? 3), delaysMs: (env.CQRS_RETRY_DELAYS ?? '200,400').split(',').map(Number) },
        handlers: {
          [id('author')]: env.CQRS_FAIL_NAME
            ? {
                model: 'authorRef',
                async create(data: any, ctx: any) {
                  if (String(data.name).startsWith(env.CQRS_FAIL_NAME!)) {
                    if (env.CQRS_FAIL_PERMANENT) throw new NonRetryableError(`injected permanent failure for ${data.name}`)
                    throw new Error(`injected failure for ${data.name}`)
                  }
                  return ctx.tx.authorRef.create({ data })
                },
              }
            : { model: 'authorRef' },
          [id('book')]: { model: 'bookRef', fields: { author: 'authorId' } },
          [id('tag')]: { model: 'tagRef' },
          [id('setting')]: { model: 'settingRef' },
          [id('ledger')]: { model: 'ledgerRef' },
        },
      })
    : undefined,
})
