import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** A rendered scrape: the body in Prometheus's text format and its content type. */
export interface Scrape {
  contentType: string
  body: string
}

export interface MetricsServer {
  /** The port listened on (the one asked for, or the one the system chose for port 0). */
  readonly port: number
  close(): Promise<void>
}

/**
 * Serve `GET /metrics` on `port` (all interfaces unless `host` is given) with node:http, no
 * framework. A failing render answers 500 with its reason, so a broken scrape is visible in Prometheus.
 */
export async function serveMetrics(port: number, render: () => Promise<Scrape>, host?: string): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('cqrs-sync serves only GET /metrics\n')
      return
    }
    render().then(
      (s) => res.writeHead(200, { 'content-type': s.contentType }).end(s.body),
      (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`cannot render metrics: ${(e as Error).message}\n`),
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new Error(`cannot serve metrics on port ${port}: ${e.code === 'EADDRINUSE' ? 'the port is in use; pick another with --metrics-port' : e.message}`)),
    )
    server.listen(port, host, () => resolve())
  })
  // Scrapes must not keep a stopping process alive.
  server.unref()
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
