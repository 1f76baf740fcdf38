/*  zc_zap — the process's ZAP handler: who may complete a CURVE handshake
    (private to the messaging plane).

    libzmq asks a ZAP handler (RFC 27, inproc "zeromq.zap.01") whether to
    accept each client that completes a CURVE handshake with a server
    socket; without a handler it accepts every client, which encrypts but
    authenticates nobody. There is one such endpoint per ZMQ context, and
    every zsock shares CZMQ's context, while several meshes (with the same
    or different cluster keys) may live in one process. So the handler is
    process-wide and reference counted, and it keeps no table: a server
    socket's ZAP domain names the one client key it accepts
    (zc_zap_domain), and the handler accepts a CURVE client only if its
    public key is that key. Domains that are not ours are accepted, as
    libzmq would without a handler. A refused client gets status 400;
    libzmq then reports ZMQ_EVENT_HANDSHAKE_FAILED_AUTH on the server
    socket, where the mesh counts it (zc_refusals).
*/
#ifndef ZC_ZAP_H_INCLUDED
#define ZC_ZAP_H_INCLUDED

#include <stddef.h>

//  A ZAP domain with its prefix and a 40-character key fits in this.
#define ZC_ZAP_DOMAIN_MAX 64

//  Starts the handler if it is not running and counts one more user.
//  Returns 0, or -1 if it cannot start (another handler already holds
//  "zeromq.zap.01" in this context, e.g. CZMQ's zauth).
int zc_zap_acquire(void);

//  Counts one user less; the last one stops the handler.
void zc_zap_release(void);

//  Writes the ZAP domain that admits only clients whose public key is
//  public_key (Z85, 40 characters) into out (ZC_ZAP_DOMAIN_MAX bytes).
void zc_zap_domain(const char *public_key, char *out);

#endif
