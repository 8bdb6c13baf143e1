// js-libp2p interop peer for peerwire's tests.
//
// The command-line contract is shared with interop/py/peer.py and documented in
// interop/README.md. peerwire's tests parse the JSON lines printed on stdout, so event
// names and fields are an interface, not log text; free-form logs go to stderr.
//
// Only Noise is offered for security and only the muxer named by --muxer is offered, so a
// successful run proves exactly that combination interoperates.
//
// js-libp2p 3.x needs Promise.withResolvers, which Node 20 lacks: the polyfill is imported
// first and every libp2p module is loaded dynamically afterwards, so this file works both as
// `node --import ./polyfill.mjs peer.mjs` and as plain `node peer.mjs`, from any cwd (bare
// specifiers resolve against this file's own node_modules).
import './polyfill.mjs'
import fs from 'node:fs'
import tty from 'node:tty'
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'

const ECHO_PROTOCOL = '/echo/1.0.0'
// Chunk size for echo writes: small enough to exercise muxer framing and flow control.
const CHUNK = 64 * 1024
// Grace period for node.stop() before the process is ended regardless.
const SHUTDOWN_GRACE_MS = 3000

function emit (event) {
  // Pipes and files are written synchronously by Node on Linux, so a line is complete
  // before any later process.exit().
  process.stdout.write(JSON.stringify(event) + '\n')
}

function log (...parts) {
  process.stderr.write(`js-peer: ${parts.map(p => (p instanceof Error ? (p.stack ?? String(p)) : String(p))).join(' ')}\n`)
}

function usageError (message) {
  process.stderr.write(`js-peer: error: ${message}\n`)
  process.exit(2)
}

function parseCli () {
  let values
  try {
    ({ values } = parseArgs({
      options: {
        listen: { type: 'string' },
        dial: { type: 'string' },
        muxer: { type: 'string', default: 'yamux' },
        seed: { type: 'string' },
        'echo-bytes': { type: 'string', default: '1048576' },
        timeout: { type: 'string', default: '60' }
      },
      strict: true,
      allowPositionals: false
    }))
  } catch (err) {
    usageError(err.message)
  }
  if (values.listen == null && values.dial == null) usageError('give --listen and/or --dial')
  if (values.muxer !== 'yamux' && values.muxer !== 'mplex') usageError('--muxer must be yamux or mplex')
  let seed
  if (values.seed != null) {
    if (!/^[0-9a-fA-F]{64}$/.test(values.seed)) usageError('--seed must be 64 hex chars (32 bytes)')
    seed = Uint8Array.from(Buffer.from(values.seed, 'hex'))
  }
  const echoBytes = Number(values['echo-bytes'])
  if (!Number.isSafeInteger(echoBytes) || echoBytes < 0) usageError('--echo-bytes must be an integer >= 0')
  const timeout = Number(values.timeout)
  if (!Number.isFinite(timeout) || timeout <= 0) usageError('--timeout must be > 0')
  return { listen: values.listen, dial: values.dial, muxer: values.muxer, seed, echoBytes, timeout }
}

// Watch stdin only if it is a pipe, socket or terminal: a harness that spawns us with
// stdin=/dev/null would otherwise make the peer exit at once. Then only --timeout applies.
function stdinIsWatchable () {
  try {
    const st = fs.fstatSync(0)
    return st.isFIFO() || st.isSocket() || tty.isatty(0)
  } catch {
    return false
  }
}

const args = parseCli()

const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { mplex } = await import('@libp2p/mplex')
const { identify } = await import('@libp2p/identify')
const { ping } = await import('@libp2p/ping')
const { generateKeyPair, generateKeyPairFromSeed } = await import('@libp2p/crypto/keys')
const { multiaddr } = await import('@multiformats/multiaddr')

let node
let resultPrinted = false
let shuttingDown = false
let dialFailed = false // a failed dial makes the final exit status 1, even when also listening

async function shutdown (code, reason) {
  if (shuttingDown) return
  shuttingDown = true
  if (args.dial != null && !resultPrinted) {
    resultPrinted = true
    emit({ event: 'result', ok: false, error: reason })
    code = 1
  }
  if (dialFailed) code = 1
  log(`exiting (${reason}), code ${code}`)
  setTimeout(() => process.exit(code), SHUTDOWN_GRACE_MS).unref()
  try {
    await node?.stop()
  } catch (err) {
    log('error while stopping:', err)
  }
  process.exit(code)
}

// Every peer ends by itself: after --timeout, or when stdin closes.
setTimeout(() => { shutdown(0, 'timeout') }, args.timeout * 1000)
if (stdinIsWatchable()) {
  const onEof = () => { shutdown(0, 'stdin closed') }
  process.stdin.on('end', onEof)
  process.stdin.on('close', onEof)
  process.stdin.on('error', onEof)
  process.stdin.on('data', () => {})
  process.stdin.resume()
} else {
  log('stdin is not a pipe/tty: only --timeout bounds this peer')
}
process.on('unhandledRejection', (err) => { log('unhandled rejection:', err) })
process.on('uncaughtException', (err) => {
  log('uncaught exception:', err)
  shutdown(1, `uncaught exception: ${err?.message ?? err}`)
})

// Serve /echo/1.0.0: copy bytes back until the remote half-closes, then close our side.
async function handleEcho (stream) {
  let total = 0
  try {
    for await (const chunk of stream) {
      total += chunk.byteLength
      if (!stream.send(chunk)) await stream.onDrain()
    }
    await stream.close()
  } catch (err) {
    log(`echo handler failed after ${total} bytes:`, err)
    stream.abort(err)
    return
  }
  emit({ event: 'echo', bytes: total })
}

async function echoRoundTrip (connection, nbytes) {
  const payload = randomBytes(nbytes)
  const stream = await connection.newStream(ECHO_PROTOCOL)
  // Read concurrently with writing: the remote echoes while we send, and flow control
  // would stall both sides if we only read after writing everything.
  const reading = (async () => {
    const received = new Uint8Array(nbytes)
    let length = 0
    for await (const chunk of stream) {
      const bytes = chunk.subarray()
      if (length + bytes.byteLength > nbytes) throw new Error(`echo returned more than ${nbytes} bytes`)
      received.set(bytes, length)
      length += bytes.byteLength
    }
    return received.subarray(0, length)
  })()
  reading.catch(() => {}) // awaited below; keep an early failure from being "unhandled"
  for (let off = 0; off < nbytes; off += CHUNK) {
    if (!stream.send(payload.subarray(off, off + CHUNK))) await stream.onDrain()
  }
  await stream.close() // half-close: we can still read the rest of the echo
  const received = await reading
  if (received.byteLength !== nbytes || Buffer.compare(Buffer.from(received), payload) !== 0) {
    throw new Error(`echo mismatch: sent ${nbytes} bytes, got ${received.byteLength} back`)
  }
  return received.byteLength
}

async function dialSequence (target) {
  const connection = await node.dial(multiaddr(target))
  const peerId = connection.remotePeer
  const rtt = await node.services.ping.ping(peerId)
  const id = await node.services.identify.identify(connection)
  const echoed = await echoRoundTrip(connection, args.echoBytes)
  return {
    event: 'result',
    ok: true,
    peer_id: peerId.toString(),
    rtt_ms: rtt,
    agent_version: id.agentVersion ?? null,
    protocols: id.protocols,
    echo_bytes: echoed,
    muxer: connection.multiplexer ?? null
  }
}

try {
  const privateKey = args.seed != null
    ? await generateKeyPairFromSeed('Ed25519', args.seed)
    : await generateKeyPair('Ed25519')
  node = await createLibp2p({
    start: false,
    privateKey,
    addresses: { listen: args.listen != null ? [args.listen] : [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [args.muxer === 'mplex' ? mplex() : yamux()],
    services: { identify: identify(), ping: ping() }
  })
  node.addEventListener('peer:connect', (evt) => {
    emit({ event: 'connected', peer_id: evt.detail.toString() })
  })
  node.addEventListener('peer:identify', (evt) => {
    const r = evt.detail
    emit({ event: 'identify', peer_id: r.peerId.toString(), agent_version: r.agentVersion ?? null, protocols: r.protocols })
  })
  await node.handle(ECHO_PROTOCOL, handleEcho)
  await node.start()
} catch (err) {
  log('startup failed:', err)
  await shutdown(1, `startup failed: ${err?.message ?? err}`)
}

if (args.listen != null) {
  emit({ event: 'listening', peer_id: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })
}

if (args.dial != null) {
  let code = 0
  try {
    const result = await dialSequence(args.dial)
    if (!shuttingDown) {
      resultPrinted = true
      emit(result)
    }
  } catch (err) {
    log('dial sequence failed:', err)
    if (!shuttingDown) {
      resultPrinted = true
      emit({ event: 'result', ok: false, error: `${err?.name ?? 'Error'}: ${err?.message ?? err}` })
    }
    code = 1
    dialFailed = true
  }
  if (args.listen == null) await shutdown(code, 'done')
  else if (code !== 0) log('dial failed; still listening until timeout/stdin close')
}
