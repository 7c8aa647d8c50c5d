/**
 * The in-process relay's cycle, timed from outside (bench/profile/relay-cycle.ts and the end-to-end
 * lag runs): from the last kick (a commit it saw) to its claim, the claim's round trip, writing the
 * messages to the channel, the broker's confirms, and from the confirms to the claim's end (its
 * DELETE and COMMIT). Wraps the relay's kick, its store's claim and its transport's send.
 */
import { percentile } from './stats.js'

export interface RelayTimes {
  sinceKick: number[]
  claim: number[]
  send: number[]
  confirm: number[]
  finish: number[]
}

export function timeRelay(relay: any): { times: RelayTimes; reset(): void; summary(): string } {
  const { store, transport } = relay.opts
  const times: RelayTimes = { sinceKick: [], claim: [], send: [], confirm: [], finish: [] }
  let lastKick = 0
  const kick = relay.kick.bind(relay)
  relay.kick = () => {
    lastKick = performance.now()
    kick()
  }
  const claim = store.claim.bind(store)
  store.claim = async (limit: number, publish: (rows: unknown[]) => Promise<void>, o: unknown) => {
    const t = performance.now()
    if (lastKick) times.sinceKick.push(t - lastKick)
    let published = 0
    const n = await claim(limit, async (rows: unknown[]) => (times.claim.push(performance.now() - t), await publish(rows), (published = performance.now())), o)
    if (published) times.finish.push(performance.now() - published)
    return n
  }
  const send = transport.send.bind(transport)
  transport.send = async (messages: unknown[]) => {
    const t = performance.now()
    const r = await send(messages)
    const w = performance.now()
    times.send.push(w - t)
    r.confirmed.then(() => times.confirm.push(performance.now() - w))
    return r
  }
  const f = (a: number[]) => `${percentile(a, 0.5).toFixed(2)}/${percentile(a, 0.99).toFixed(2)}`
  return {
    times,
    reset: () => Object.values(times).forEach((a: number[]) => (a.length = 0)),
    summary: () => `kick->claim ${f(times.sinceKick)}, claim ${f(times.claim)}, send ${f(times.send)}, confirms ${f(times.confirm)}, delete+commit ${f(times.finish)} ms p50/p99`,
  }
}
