// Node 20 lacks Promise.withResolvers (added in Node 22), which js-libp2p 3.x calls at run
// time. Load this module before any libp2p module: `node --import ./polyfill.mjs peer.mjs`.
// peer.mjs also imports it first and loads libp2p dynamically, so either way works.
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers () {
      let resolve
      let reject
      const promise = new this((res, rej) => {
        resolve = res
        reject = rej
      })
      return { promise, resolve, reject }
    }
  })
}
