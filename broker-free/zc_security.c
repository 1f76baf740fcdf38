/*  zc_security — how every zcluster socket is secured. */
#include "zc_security.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct _zc_security_t {
    int curve;
    char public_key[41];
    char secret_key[41];
};

zc_security_t *zc_security_new(void)
{
    return (zc_security_t *)calloc(1, sizeof(zc_security_t));
}

void zc_security_destroy(zc_security_t **self_p)
{
    assert(self_p);
    if (*self_p) {
        memset(*self_p, 0, sizeof(zc_security_t)); //  do not leave the secret key in freed memory
        free(*self_p);
        *self_p = NULL;
    }
}

static int s_z85_key_valid(const char *key)
{
    uint8_t raw[32];
    return key && strlen(key) == 40 && zmq_z85_decode(raw, key) != NULL;
}

int zc_security_set_curve(zc_security_t *self, const char *public_key, const char *secret_key)
{
    assert(self);
    if (!zmq_has("curve")) return -1;
    if (!secret_key) {
        if (zmq_curve_keypair(self->public_key, self->secret_key) != 0) return -1;
    } else {
        if (!s_z85_key_valid(public_key) || !s_z85_key_valid(secret_key)) return -1;
        memcpy(self->public_key, public_key, 41);
        memcpy(self->secret_key, secret_key, 41);
    }
    self->curve = 1;
    return 0;
}

int zc_security_curve(zc_security_t *self)
{
    assert(self);
    return self->curve;
}

const char *zc_security_public_key(zc_security_t *self)
{
    assert(self);
    return self->curve ? self->public_key : "";
}

int zc_security_apply_server(zc_security_t *self, void *socket)
{
    assert(self);
    if (!self->curve) return 0;
    int one = 1;
    if (zmq_setsockopt(socket, ZMQ_CURVE_SERVER, &one, sizeof one) ||
        zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, self->secret_key, 40))
        return -1;
    return 0;
}

int zc_security_apply_client(zc_security_t *self, void *socket, const char *server_key)
{
    assert(self);
    if (!self->curve) return 0;
    if (!s_z85_key_valid(server_key)) return -1;
    if (zmq_setsockopt(socket, ZMQ_CURVE_SERVERKEY, server_key, 40) ||
        zmq_setsockopt(socket, ZMQ_CURVE_PUBLICKEY, self->public_key, 40) ||
        zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, self->secret_key, 40))
        return -1;
    return 0;
}
