/*  zc_security — how every zcluster socket is secured.

    The mesh creates each socket through a security object, so switching a
    cluster from plain TCP to CURVE changes configuration, not code. The
    NULL mechanism (the default) sets nothing.

    With CURVE the scheme is one cluster key pair held by every member
    (docs/SECURITY.md), like Erlang's cookie but as a CURVE key pair: the
    binding sockets (PUB, ROUTER) are CURVE servers with the cluster secret
    key, and a ZAP handler admits a client only if its public key is the
    cluster's; the connecting sockets (SUB, DEALER) are CURVE clients with
    the cluster pair as their own key and the cluster public key as the
    server key, so they only complete a handshake with a holder of the
    cluster secret. A process without the secret key can neither connect
    nor be connected to.

    Credentials file (zcluster keygen, zc_security_save): the cluster pair
    in CZMQ's secret certificate format (ZPL), mode 0600:

        curve
            public-key = "40 Z85 characters"
            secret-key = "40 Z85 characters"

    A file that group or others may read or write is refused. The default
    file is $ZC_KEYS (a path, never the key itself).

    Errors: zc_security_load and zc_security_save return -1 and leave a
    message for zc_security_errstr; it never contains a secret key.
*/
#ifndef ZC_SECURITY_H_INCLUDED
#define ZC_SECURITY_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zc_security_t zc_security_t;

//  Creates a security configuration using the NULL mechanism. NULL on failure.
zc_security_t *zc_security_new(void);

//  Destroys the configuration (wiping the secret key) and sets *self_p to
//  NULL; idempotent.
void zc_security_destroy(zc_security_t **self_p);

//  Switches to CURVE with this key pair (Z85, 40 characters each); a NULL
//  secret key generates a fresh pair. Returns 0, or -1 if the keys are not
//  valid Z85, do not belong together, or libzmq lacks CURVE support.
int zc_security_set_curve(zc_security_t *self, const char *public_key, const char *secret_key);

//  Loads the cluster pair from a credentials file and switches to CURVE.
//  path NULL means $ZC_KEYS; if that is unset or empty, nothing changes
//  (NULL mechanism) and it returns 0. Returns 0, or -1 if the file is
//  missing, not a regular file, readable or writable by group or others,
//  or malformed (message in zc_security_errstr).
int zc_security_load(zc_security_t *self, const char *path);

//  Writes this configuration's CURVE pair to a new credentials file, mode
//  0600, refusing to replace an existing file. Returns 0, or -1 (CURVE off,
//  file exists, cannot write; message in zc_security_errstr).
int zc_security_save(zc_security_t *self, const char *path);

//  The message of the last failed load or save ("" if none).
const char *zc_security_errstr(zc_security_t *self);

//  Returns 1 if CURVE is on.
int zc_security_curve(zc_security_t *self);

//  Returns this node's public key in Z85, or "" with the NULL mechanism.
const char *zc_security_public_key(zc_security_t *self);

//  Returns 1 if a peer that advertises this public key (Z85; "" or NULL for
//  none) can talk to us: both without CURVE, or both with the same cluster
//  key. A mismatched peer cannot complete a handshake either way.
int zc_security_matches(zc_security_t *self, const char *peer_key);

//  Configures a binding socket (raw libzmq handle): with CURVE, a server
//  with the secret key whose ZAP domain admits only this public key (the
//  process's ZAP handler is started with the first one). Returns 0 or -1.
int zc_security_apply_server(zc_security_t *self, void *socket);

//  Configures a connecting socket. server_key is the key the server must
//  prove it holds (Z85); NULL: this configuration's own public key, as
//  every member holds the cluster pair. Ignored without CURVE. Returns 0,
//  or -1 on an invalid key.
int zc_security_apply_client(zc_security_t *self, void *socket, const char *server_key);

//  Returns 1 if key is a CURVE key in Z85: 40 characters that decode.
int zc_security_key_valid(const char *key);

#ifdef __cplusplus
}
#endif

#endif
