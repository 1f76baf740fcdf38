/*  zc_security — how every zcluster socket is secured.

    The mesh creates each socket through a security object, so switching a
    cluster from plain TCP to CURVE changes configuration, not code. The
    NULL mechanism (the default) sets nothing. With CURVE, the binding
    sockets (PUB, ROUTER) are CURVE servers with this node's key pair and the
    connecting sockets (SUB, DEALER) are CURVE clients that authenticate the
    peer by the public key the registry advertises for it.
*/
#ifndef ZC_SECURITY_H_INCLUDED
#define ZC_SECURITY_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zc_security_t zc_security_t;

//  Creates a security configuration using the NULL mechanism. NULL on failure.
zc_security_t *zc_security_new(void);

//  Destroys the configuration and sets *self_p to NULL; idempotent.
void zc_security_destroy(zc_security_t **self_p);

//  Switches to CURVE with this key pair (Z85, 40 characters each); a NULL
//  secret key generates a fresh pair. Returns 0, or -1 if the keys are not
//  valid Z85 or libzmq lacks CURVE support.
int zc_security_set_curve(zc_security_t *self, const char *public_key, const char *secret_key);

//  Returns 1 if CURVE is on.
int zc_security_curve(zc_security_t *self);

//  Returns this node's public key in Z85, or "" with the NULL mechanism.
const char *zc_security_public_key(zc_security_t *self);

//  Configures a binding socket (raw libzmq handle). Returns 0 or -1.
int zc_security_apply_server(zc_security_t *self, void *socket);

//  Configures a connecting socket for a peer whose public key is given (Z85;
//  required with CURVE, ignored otherwise). Returns 0 or -1.
int zc_security_apply_client(zc_security_t *self, void *socket, const char *server_key);

#ifdef __cplusplus
}
#endif

#endif
