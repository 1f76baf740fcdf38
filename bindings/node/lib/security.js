'use strict'
/*  security — CURVE with the cluster credentials (docs/SECURITY.md,
    docs/PROTOCOL.md section 11): every member holds one key pair. The
    binding sockets are CURVE servers with the cluster secret key and a ZAP
    domain; the connecting ones are clients with the cluster pair and the
    cluster public key as server key; a ZAP handler admits only clients
    that proved they hold the cluster pair. Without it libzmq would admit
    any client that completes a handshake.

    The credentials come from a file (CZMQ's secret certificate format,
    what `zcluster keygen` writes), checked as the C nodes check it: a
    private regular file, two 40-character Z85 keys, the secret key the
    public key's. The secret key is never shown.
*/
const fs = require('node:fs')
const crypto = require('node:crypto')
const zmq = require('zeromq')

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#'
const ZAP_ENDPOINT = 'inproc://zeromq.zap.01'
const DOMAIN_PREFIX = 'zc.curve.'
const FILE_MAX = 4096

//  Z85 text to bytes, or null if it is not Z85 of whole 4-byte groups.
function z85Decode (text) {
  if (typeof text !== 'string' || text.length % 5) return null
  const out = Buffer.alloc(text.length / 5 * 4)
  for (let i = 0; i < text.length; i += 5) {
    let value = 0
    for (let j = 0; j < 5; j++) {
      const digit = Z85.indexOf(text[i + j])
      if (digit < 0) return null
      value = value * 85 + digit
    }
    if (value > 0xffffffff) return null
    out.writeUInt32BE(value, i / 5 * 4)
  }
  return out
}

//  The X25519 public key of a secret key (32 bytes each).
function s_publicOf (secret) {
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), secret])
  const key = crypto.createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })
  return Buffer.from(crypto.createPublicKey(key).export({ format: 'jwk' }).x, 'base64url')
}

//  Reads the credentials file at path: {publicKey, secretKey} (Z85), or
//  throws with the reason.
function loadKeys (path) {
  let fd
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
  } catch (e) {
    throw new Error(`cannot open credentials file ${path}: ${e.code || e.message}`)
  }
  let text
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile()) throw new Error(`credentials file ${path} is not a regular file`)
    if (st.mode & 0o077) throw new Error(`credentials file ${path} has mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}: group or others may read or write it (chmod 600 it)`)
    if (st.size >= FILE_MAX) throw new Error(`credentials file ${path} is too large to be one`)
    text = fs.readFileSync(fd, 'utf8')
  } finally {
    fs.closeSync(fd)
  }
  const key = name => (text.match(new RegExp(`^\\s+${name}\\s*=\\s*"([^"]*)"\\s*$`, 'm')) || [])[1]
  const publicKey = key('public-key')
  const secretKey = key('secret-key')
  const pub = z85Decode(publicKey)
  const sec = z85Decode(secretKey)
  if (!/^curve\s*$/m.test(text) || !pub || !sec || pub.length !== 32 || sec.length !== 32) {
    throw new Error(`credentials file ${path} is malformed: it needs curve/public-key and curve/secret-key, 40 Z85 characters each (zcluster keygen writes one)`)
  }
  if (!s_publicOf(sec).equals(pub)) throw new Error(`credentials file ${path}: its secret key does not belong to its public key`)
  return { publicKey, secretKey }
}

//  ------------------------------------------------------------------------
//  The ZAP handler: one per process (libzmq takes one per context, and
//  zeromq.js sockets share one), started by the first peer with keys.

let s_zap = null
let s_users = 0
let s_refused = 0 //  clients the handler turned away, for `info`'s `refused`

//  Admits a CURVE client whose key is the one the server socket's domain
//  names; a domain that is not zcluster's is admitted, as without a handler.
function s_admit (domain, mechanism, credentials) {
  if (!domain.startsWith(DOMAIN_PREFIX)) return true
  const expected = z85Decode(domain.slice(DOMAIN_PREFIX.length))
  return mechanism === 'CURVE' && !!credentials && !!expected && expected.length === 32 && credentials.equals(expected)
}

async function s_serve (socket) {
  try {
    for await (const [version, id, domain, , , mechanism, credentials] of socket) {
      const ok = version && version.toString() === '1.0' && domain && mechanism &&
        s_admit(domain.toString(), mechanism.toString(), credentials)
      if (!ok) s_refused++
      await socket.send(['1.0', id || '', ok ? '200' : '400', ok ? 'OK' : 'not a member of this cluster', '', ''])
    }
  } catch (e) {
    if (!socket.closed) throw e
  }
}

async function zapAcquire () {
  if (!s_zap) {
    const socket = new zmq.Reply({ linger: 0 })
    try {
      await socket.bind(ZAP_ENDPOINT)
    } catch (e) {
      socket.close()
      throw new Error(`cannot serve ${ZAP_ENDPOINT}: is another ZAP handler running in this process? (${e.message})`)
    }
    s_zap = socket
    s_serve(socket)
  }
  s_users++
}

function zapRelease () {
  if (s_users && --s_users === 0) {
    s_zap.close()
    s_zap = null
  }
}

//  Socket options: a server's, and a client's of the cluster.
function serverOptions (keys) {
  return keys ? { curveServer: true, curveSecretKey: keys.secretKey, zapDomain: DOMAIN_PREFIX + keys.publicKey } : {}
}

function clientOptions (keys) {
  return keys ? { curvePublicKey: keys.publicKey, curveSecretKey: keys.secretKey, curveServerKey: keys.publicKey } : {}
}

//  Whether a peer advertising this key ('' for none) holds our credentials.
function matches (keys, peerKey) {
  return keys ? peerKey === keys.publicKey : !peerKey
}

//  Handshakes refused by this process's ZAP handler (all its peers share it).
function refusedCount () {
  return s_refused
}

module.exports = { refusedCount, loadKeys, zapAcquire, zapRelease, serverOptions, clientOptions, matches, z85Decode }
