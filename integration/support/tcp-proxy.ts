/**
 * A TCP proxy on 127.0.0.1:<random port> in front of a real server (RabbitMQ by default), so a test
 * can take the broker away from one client without stopping the shared server:
 * - `cut()`: destroy every proxied connection and refuse new ones (accepted, then destroyed at once);
 * - `blackhole()`: keep connections open but forward nothing either way (a network partition; a
 *   publish then waits for a confirm that never comes);
 * - `restore()`: forward again (new connections only after a cut; the same ones after a blackhole).
 */
import net from 'node:net'

export type ProxyMode = 'forward' | 'cut' | 'blackhole'

export class TcpProxy {
  private server: net.Server
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>()
  private mode: ProxyMode = 'forward'
  private swallowedWaiters: Array<{ n: number; resolve: () => void }> = []
  /** Bytes the clients sent while the proxy forwarded nothing (blackhole). */
  swallowed = 0
  /** Connections accepted (and forwarded) so far. */
  accepted = 0
  /** Connections refused while cut. */
  refused = 0
  port = 0

  constructor(
    private readonly targetPort = 5672,
    private readonly targetHost = '127.0.0.1',
  ) {
    this.server = net.createServer((client) => this.onConnection(client))
  }

  /** A proxy to `targetHost:targetPort`, listening on a free port of `listenHost`. */
  static async start(targetPort = 5672, targetHost = '127.0.0.1', listenHost = '127.0.0.1'): Promise<TcpProxy> {
    const p = new TcpProxy(targetPort, targetHost)
    await new Promise<void>((resolve, reject) => {
      p.server.once('error', reject)
      p.server.listen(0, listenHost, () => resolve())
    })
    p.port = (p.server.address() as net.AddressInfo).port
    return p
  }

  /** `amqp://guest:guest@127.0.0.1:<port>`: the broker as seen through this proxy. */
  get amqpUrl(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`
  }

  get state(): ProxyMode {
    return this.mode
  }

  /** Connections open right now. */
  get open(): number {
    return this.pairs.size
  }

  cut(): void {
    this.mode = 'cut'
    for (const p of this.pairs) {
      p.client.destroy()
      p.upstream.destroy()
    }
    this.pairs.clear()
  }

  blackhole(): void {
    this.mode = 'blackhole'
  }

  restore(): void {
    this.mode = 'forward'
  }

  /** Resolves once clients sent at least `n` bytes into the blackhole. */
  swallowedAtLeast(n: number): Promise<void> {
    if (this.swallowed >= n) return Promise.resolve()
    return new Promise((resolve) => this.swallowedWaiters.push({ n, resolve }))
  }

  async close(): Promise<void> {
    this.cut()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private onConnection(client: net.Socket): void {
    client.on('error', () => {})
    if (this.mode === 'cut') {
      this.refused++
      client.destroy()
      return
    }
    this.accepted++
    const upstream = net.connect(this.targetPort, this.targetHost)
    upstream.on('error', () => {})
    const pair = { client, upstream }
    this.pairs.add(pair)
    const end = () => {
      this.pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('close', end)
    upstream.on('close', end)
    client.on('data', (d) => {
      if (this.mode === 'forward') upstream.write(d)
      else this.swallow(d.length)
    })
    upstream.on('data', (d) => {
      if (this.mode === 'forward') client.write(d)
    })
  }

  private swallow(n: number): void {
    this.swallowed += n
    this.swallowedWaiters = this.swallowedWaiters.filter((w) => (this.swallowed >= w.n ? (w.resolve(), false) : true))
  }
}
