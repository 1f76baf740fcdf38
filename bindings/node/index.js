'use strict'
/*  zcluster-peer — a zcluster node in plain JavaScript. See README.md. */
const { Peer } = require('./lib/peer')
const { RpcError, STATUS, STATUS_NAMES } = require('./lib/rpc')
const wire = require('./lib/wire')
const msgpack = require('@msgpack/msgpack')

module.exports = {
  Peer,
  RpcError,
  STATUS,
  STATUS_NAMES,
  wire,
  encode: value => Buffer.from(msgpack.encode(value)),
  decode: bytes => msgpack.decode(bytes)
}
