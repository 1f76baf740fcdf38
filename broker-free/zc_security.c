/*  zc_security — how every zcluster socket is secured.

    Why one cluster pair rather than a pair per node: a member then needs
    one file, the ZAP decision is a comparison with no list to keep in step
    across hosts, and a registry record can carry nothing that widens who
    may connect (a key it advertises is only compared, never trusted). The
    cost, said plainly in docs/SECURITY.md: members are equal, and one can
    pose as another.

    The credentials file is read through one descriptor, checked with fstat
    on that descriptor (no window between the mode check and the read),
    and never followed through a symbolic link.
*/
#include "zc_security.h"
#include "zc_zap.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define CREDENTIALS_MAX 16384 //  a credentials file is about 300 bytes

struct _zc_security_t {
    int curve;
    int zap_held; //  this object counts as a user of the ZAP handler
    char public_key[41];
    char secret_key[41];
    char zap_domain[ZC_ZAP_DOMAIN_MAX];
    char error[512];
};

zc_security_t *zc_security_new(void)
{
    return (zc_security_t *)calloc(1, sizeof(zc_security_t));
}

void zc_security_destroy(zc_security_t **self_p)
{
    assert(self_p);
    if (*self_p) {
        if ((*self_p)->zap_held) zc_zap_release();
        memset(*self_p, 0, sizeof(zc_security_t)); //  do not leave the secret key in freed memory
        free(*self_p);
        *self_p = NULL;
    }
}

int zc_security_key_valid(const char *key)
{
    uint8_t raw[32];
    return key && strlen(key) == 40 && zmq_z85_decode(raw, key) != NULL;
}

//  Returns 1 if secret_key is the secret half of public_key.
static int s_pair_matches(const char *public_key, const char *secret_key)
{
    char derived[41];
    int ok = zmq_curve_public(derived, secret_key) == 0 && strcmp(derived, public_key) == 0;
    memset(derived, 0, sizeof derived);
    return ok;
}

int zc_security_set_curve(zc_security_t *self, const char *public_key, const char *secret_key)
{
    assert(self);
    if (!zmq_has("curve")) return -1;
    if (!secret_key) {
        if (zmq_curve_keypair(self->public_key, self->secret_key) != 0) return -1;
    } else {
        if (!zc_security_key_valid(public_key) || !zc_security_key_valid(secret_key) ||
            !s_pair_matches(public_key, secret_key))
            return -1;
        memcpy(self->public_key, public_key, 41);
        memcpy(self->secret_key, secret_key, 41);
    }
    zc_zap_domain(self->public_key, self->zap_domain);
    self->curve = 1;
    return 0;
}

static int s_fail(zc_security_t *self, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

//  Leaves the reason of a failed load or save; returns -1.
static int s_fail(zc_security_t *self, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(self->error, sizeof self->error, format, args);
    va_end(args);
    return -1;
}

//  Reads the whole file at path into buf (cap bytes, NUL-terminated) after
//  checking it is a private regular file. Returns 0 or -1 (message set).
static int s_read_private(zc_security_t *self, const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return s_fail(self, "cannot open credentials file %.300s: %s", path, strerror(errno));
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) != 0)
        s_fail(self, "cannot stat credentials file %.300s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        s_fail(self, "credentials file %.300s is not a regular file", path);
    else if (st.st_mode & 077)
        s_fail(self,
               "credentials file %.300s has mode %04o: group or others may read or write it "
               "(chmod 600 it)",
               path, (unsigned)(st.st_mode & 07777));
    else if (st.st_size >= (off_t)cap)
        s_fail(self, "credentials file %.300s is too large to be one", path);
    else {
        ssize_t got = read(fd, buf, cap - 1);
        if (got < 0)
            s_fail(self, "cannot read credentials file %.300s: %s", path, strerror(errno));
        else {
            buf[got] = 0;
            rc = 0;
        }
    }
    close(fd);
    return rc;
}

int zc_security_load(zc_security_t *self, const char *path)
{
    assert(self);
    self->error[0] = 0;
    if (!path) path = getenv("ZC_KEYS");
    if (!path || !*path) return 0;
    char *text = (char *)malloc(CREDENTIALS_MAX);
    assert(text);
    int rc = s_read_private(self, path, text, CREDENTIALS_MAX);
    zconfig_t *config = rc == 0 ? zconfig_str_load(text) : NULL;
    if (rc == 0) {
        const char *public_key = config ? zconfig_get(config, "curve/public-key", "") : "";
        const char *secret_key = config ? zconfig_get(config, "curve/secret-key", "") : "";
        if (!zc_security_key_valid(public_key) || !zc_security_key_valid(secret_key))
            rc = s_fail(self,
                        "credentials file %.300s is malformed: it needs curve/public-key and "
                        "curve/secret-key, 40 Z85 characters each (zcluster keygen writes one)",
                        path);
        else if (zc_security_set_curve(self, public_key, secret_key))
            rc = s_fail(self,
                        "credentials file %.300s: its secret key does not belong to its public "
                        "key, or libzmq has no CURVE support",
                        path);
    }
    zconfig_destroy(&config); //  holds the secret key: as freed memory, not wiped by CZMQ
    memset(text, 0, CREDENTIALS_MAX);
    free(text);
    return rc;
}

int zc_security_save(zc_security_t *self, const char *path)
{
    assert(self && path);
    self->error[0] = 0;
    if (!self->curve) return s_fail(self, "no CURVE key pair to save");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return s_fail(self, "cannot create credentials file %.300s: %s", path, strerror(errno));
    char text[512];
    int len = snprintf(text, sizeof text,
                       "#   zcluster cluster credentials: every member holds this pair.\n"
                       "#   Keep it secret (mode 0600); give nodes its path (--keys or ZC_KEYS).\n"
                       "curve\n"
                       "    public-key = \"%s\"\n"
                       "    secret-key = \"%s\"\n",
                       self->public_key, self->secret_key);
    //  The mode is given at creation and fchmod'd again in case of a umask
    //  that would leave less: the file must end up exactly 0600.
    int rc = fchmod(fd, 0600) == 0 && write(fd, text, (size_t)len) == len ? 0 : -1;
    if (rc == 0 && fsync(fd) != 0) rc = -1;
    memset(text, 0, sizeof text);
    if (rc) s_fail(self, "cannot write credentials file %.300s: %s", path, strerror(errno));
    close(fd);
    if (rc) unlink(path);
    return rc;
}

const char *zc_security_errstr(zc_security_t *self)
{
    assert(self);
    return self->error;
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

int zc_security_matches(zc_security_t *self, const char *peer_key)
{
    assert(self);
    if (!peer_key) peer_key = "";
    return self->curve ? strcmp(peer_key, self->public_key) == 0 : *peer_key == 0;
}

int zc_security_apply_server(zc_security_t *self, void *socket)
{
    assert(self);
    if (!self->curve) return 0;
    if (!self->zap_held) {
        if (zc_zap_acquire()) return -1;
        self->zap_held = 1;
    }
    int one = 1;
    if (zmq_setsockopt(socket, ZMQ_CURVE_SERVER, &one, sizeof one) ||
        zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, self->secret_key, 40) ||
        zmq_setsockopt(socket, ZMQ_ZAP_DOMAIN, self->zap_domain, strlen(self->zap_domain)))
        return -1;
    return 0;
}

int zc_security_apply_client(zc_security_t *self, void *socket, const char *server_key)
{
    assert(self);
    if (!self->curve) return 0;
    if (!server_key) server_key = self->public_key;
    if (!zc_security_key_valid(server_key)) return -1;
    if (zmq_setsockopt(socket, ZMQ_CURVE_SERVERKEY, server_key, 40) ||
        zmq_setsockopt(socket, ZMQ_CURVE_PUBLICKEY, self->public_key, 40) ||
        zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, self->secret_key, 40))
        return -1;
    return 0;
}
