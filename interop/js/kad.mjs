// js-libp2p Kademlia DHT peer for peerwire's interop tests (tests/kad/test_js_interop.py).
//
// Same conventions as peer.mjs (see ../README.md): the polyfill is loaded first and libp2p
// dynamically afterwards; one JSON object per line on stdout ({"event":"listening",...} first);
// free-form logs on stderr; the process exits after --timeout seconds or when stdin closes.
//
// The DHT runs in server mode with the address filter disabled (passthroughMapper), because
// the default (removePrivateAddressesMapper) drops the loopback addresses every test peer has.
// Records under the "/test/" namespace are accepted (any value; first record wins on select).
//
// Commands arrive on stdin, one JSON object per line, and each gets one answer line echoing
// its "id":
//   {"id":1,"cmd":"dial","addr":"/ip4/.../p2p/..."}        -> {"id":1,"ok":true}
//   {"id":2,"cmd":"wait_peer","peer_id":"12D3..."}         -> ok once the peer is in our routing table
//   {"id":3,"cmd":"find_peer","peer_id":"12D3..."}         -> {"ok":true,"addrs":[...]} (network query, no cache)
//   {"id":4,"cmd":"closest","key":"<utf-8 text>"}          -> {"ok":true,"peers":[...]}
//   {"id":5,"cmd":"put","key":"/test/a","value":"text"}    -> {"ok":true,"stored_on":N}
//   {"id":6,"cmd":"get","key":"/test/a"}                   -> {"ok":true,"value":"text"}
//   {"id":7,"cmd":"table"}                                 -> {"ok":true,"peers":[...]}
// Failures answer {"id":N,"ok":false,"error":"..."}.
import './polyfill.mjs'
import readline from 'node:readline'
import { parseArgs } from 'node:util'

const SHUTDOWN_GRACE_MS = 3000
const WAIT_PEER_POLL_MS = 50

function emit (event) {
  process.stdout.write(JSON.stringify(event) + '\n')
}

function log (...parts) {
  process.stderr.write(`js-kad: ${parts.map(p => (p instanceof Error ? (p.stack ?? String(p)) : String(p))).join(' ')}\n`)
}

function usageError (message) {
  process.stderr.write(`js-kad: error: ${message}\n`)
  process.exit(2)
}

function parseCli () {
  let values
  try {
    ({ values } = parseArgs({
      options: {
        listen: { type: 'string', default: '/ip4/127.0.0.1/tcp/0' },
        seed: { type: 'string' },
        timeout: { type: 'string', default: '60' }
      },
      strict: true,
      allowPositionals: false
    }))
  } catch (err) {
    usageError(err.message)
  }
  let seed
  if (values.seed != null) {
    if (!/^[0-9a-fA-F]{64}$/.test(values.seed)) usageError('--seed must be 64 hex chars (32 bytes)')
    seed = Uint8Array.from(Buffer.from(values.seed, 'hex'))
  }
  const timeout = Number(values.timeout)
  if (!Number.isFinite(timeout) || timeout <= 0) usageError('--timeout must be > 0')
  return { listen: values.listen, seed, timeout }
}

const args = parseCli()

const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { identify } = await import('@libp2p/identify')
const { ping } = await import('@libp2p/ping')
const { kadDHT, passthroughMapper } = await import('@libp2p/kad-dht')
const { generateKeyPair, generateKeyPairFromSeed } = await import('@libp2p/crypto/keys')
const { peerIdFromString } = await import('@libp2p/peer-id')
const { multiaddr } = await import('@multiformats/multiaddr')

let node
let shuttingDown = false

async function shutdown (code, reason) {
  if (shuttingDown) return
  shuttingDown = true
  log(`exiting (${reason}), code ${code}`)
  setTimeout(() => process.exit(code), SHUTDOWN_GRACE_MS).unref()
  try {
    await node?.stop()
  } catch (err) {
    log('error while stopping:', err)
  }
  process.exit(code)
}

setTimeout(() => { shutdown(0, 'timeout') }, args.timeout * 1000)
process.on('unhandledRejection', (err) => { log('unhandled rejection:', err) })
process.on('uncaughtException', (err) => {
  log('uncaught exception:', err)
  shutdown(1, `uncaught exception: ${err?.message ?? err}`)
})

const utf8 = (text) => new TextEncoder().encode(text)
const text = (bytes) => new TextDecoder().decode(bytes)

async function handle (cmd) {
  const dht = node.services.dht
  switch (cmd.cmd) {
    case 'dial': {
      await node.dial(multiaddr(cmd.addr))
      return {}
    }
    case 'wait_peer': {
      const peer = peerIdFromString(cmd.peer_id)
      while ((await dht.routingTable.find(peer)) == null) {
        await new Promise(resolve => setTimeout(resolve, WAIT_PEER_POLL_MS))
      }
      return {}
    }
    case 'find_peer': {
      const peer = peerIdFromString(cmd.peer_id)
      for await (const event of dht.findPeer(peer, { useCache: false })) {
        if (event.name === 'FINAL_PEER') {
          return { addrs: event.peer.multiaddrs.map(String) }
        }
      }
      throw new Error('findPeer ended without FINAL_PEER')
    }
    case 'closest': {
      const peers = []
      for await (const event of dht.getClosestPeers(utf8(cmd.key))) {
        if (event.name === 'FINAL_PEER') peers.push(event.peer.id.toString())
      }
      return { peers }
    }
    case 'put': {
      let storedOn = 0
      for await (const event of dht.put(utf8(cmd.key), utf8(cmd.value))) {
        if (event.name === 'PEER_RESPONSE' && event.messageName === 'PUT_VALUE') storedOn++
      }
      return { stored_on: storedOn }
    }
    case 'get': {
      for await (const event of dht.get(utf8(cmd.key))) {
        if (event.name === 'VALUE') return { value: text(event.value), from: event.from.toString() }
      }
      throw new Error('no value found')
    }
    case 'table': {
      const peers = []
      for (const peer of dht.routingTable.kb.toIterable()) peers.push(peer.peerId.toString())
      return { peers }
    }
    default:
      throw new Error(`unknown command ${cmd.cmd}`)
  }
}

try {
  const privateKey = args.seed != null
    ? await generateKeyPairFromSeed('Ed25519', args.seed)
    : await generateKeyPair('Ed25519')
  node = await createLibp2p({
    start: false,
    privateKey,
    addresses: { listen: [args.listen] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        clientMode: false,
        peerInfoMapper: passthroughMapper,
        allowQueryWithZeroPeers: true,
        validators: { test: async () => {} },
        selectors: { test: () => 0 }
      })
    }
  })
  await node.start()
} catch (err) {
  log('startup failed:', err)
  await shutdown(1, `startup failed: ${err?.message ?? err}`)
}

emit({ event: 'listening', peer_id: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })

// Commands run concurrently; each answers with its own id. stdin EOF ends the process.
const lines = readline.createInterface({ input: process.stdin })
lines.on('line', (line) => {
  if (!line.trim()) return
  let cmd
  try {
    cmd = JSON.parse(line)
  } catch (err) {
    emit({ ok: false, error: `bad command line: ${err.message}` })
    return
  }
  handle(cmd).then(
    (result) => emit({ id: cmd.id, ok: true, ...result }),
    (err) => emit({ id: cmd.id, ok: false, error: `${err?.name ?? 'Error'}: ${err?.message ?? err}` })
  )
})
lines.on('close', () => { shutdown(0, 'stdin closed') })
