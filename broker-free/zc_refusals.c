/*  zc_refusals — connections a mesh refused. See zc_refusals.h. */
#include "zc_refusals.h"
#include "zc_inproc.h"
#include "zc_log.h"
#include "zc_wire.h"

#include <assert.h>
#include <czmq.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char name[16];
    char endpoint[64];
    void *socket; //  watched socket (not owned)
    zsock_t *monitor;
} s_watch_t;

struct _zc_refusals_t {
    char source[ZC_NAME_MAX + 1];
    s_watch_t watches[ZC_REFUSALS_SOCKETS_MAX];
    int watch_count;
    uint64_t count;
    uint64_t unlogged;   //  refusals since the last line
    int64_t last_line;   //  when the last line was written (monotonic ms), 0: never
    char last_what[160]; //  the latest unlogged refusal, for the summary
};

zc_refusals_t *zc_refusals_new(const char *source)
{
    zc_refusals_t *self = (zc_refusals_t *)calloc(1, sizeof(zc_refusals_t));
    assert(self);
    snprintf(self->source, sizeof self->source, "%s", source ? source : "");
    return self;
}

void zc_refusals_destroy(zc_refusals_t **self_p)
{
    assert(self_p);
    zc_refusals_t *self = *self_p;
    if (!self) return;
    for (int i = 0; i < self->watch_count; i++) {
        zmq_socket_monitor(self->watches[i].socket, NULL, 0);
        zsock_destroy(&self->watches[i].monitor);
    }
    free(self);
    *self_p = NULL;
}

int zc_refusals_watch(zc_refusals_t *self, void *socket, const char *name)
{
    assert(self && socket);
    if (self->watch_count == ZC_REFUSALS_SOCKETS_MAX) return -1;
    s_watch_t *watch = &self->watches[self->watch_count];
    snprintf(watch->name, sizeof watch->name, "%s", name);
    zc_inproc_endpoint(watch->endpoint, sizeof watch->endpoint, "refusals");
    int events = ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    if (zmq_socket_monitor(socket, watch->endpoint, events)) return -1;
    watch->monitor = zsock_new_pair(watch->endpoint);
    if (!watch->monitor) {
        zmq_socket_monitor(socket, NULL, 0);
        return -1;
    }
    watch->socket = socket;
    self->watch_count++;
    return 0;
}

int zc_refusals_pollitems(zc_refusals_t *self, zmq_pollitem_t *items)
{
    assert(self);
    for (int i = 0; i < self->watch_count; i++)
        items[i] = (zmq_pollitem_t){.fd = zsock_fd(self->watches[i].monitor), .events = ZMQ_POLLIN};
    return self->watch_count;
}

//  Says why a handshake failed, in the words an operator needs.
static const char *s_reason(uint16_t event, uint32_t value)
{
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) return "its key is not the cluster's";
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
            return "other security mechanism (plaintext against CURVE?)";
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
            return "CURVE handshake failed (it does not hold the cluster key)";
    }
    return "protocol error in the handshake";
}

//  Writes the summary of unlogged refusals if one is due.
static void s_summary(zc_refusals_t *self, int64_t now)
{
    if (!self->unlogged || now - self->last_line < ZC_REFUSALS_LOG_MS) return;
    zc_log(ZC_LOG_WARNING, self->source,
           "refused %" PRIu64 " more connections in the last %" PRId64 " s (latest: %s)",
           self->unlogged, (now - self->last_line) / 1000, self->last_what);
    self->unlogged = 0;
    self->last_line = now;
}

int zc_refusals_note(zc_refusals_t *self, const char *where, uint16_t event, uint32_t value)
{
    assert(self);
    //  HANDSHAKE_FAILED_NO_DETAIL is a connection that broke during the
    //  handshake (reset, timeout): a peer dying, not a peer refused.
    if (event != ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && event != ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        return 0;
    self->count++;
    int64_t now = zclock_mono();
    snprintf(self->last_what, sizeof self->last_what, "%.60s: %s", where, s_reason(event, value));
    if (self->last_line == 0) {
        zc_log(ZC_LOG_WARNING, self->source,
               "refused a connection (%s); further refusals: one line per %d s", self->last_what,
               ZC_REFUSALS_LOG_MS / 1000);
        self->last_line = now;
    } else {
        self->unlogged++;
        s_summary(self, now);
    }
    return 1;
}

void zc_refusals_drain(zc_refusals_t *self)
{
    assert(self);
    for (int i = 0; i < self->watch_count; i++) {
        void *monitor = zsock_resolve(self->watches[i].monitor);
        while (1) {
            zmq_msg_t event, address;
            zmq_msg_init(&event);
            zmq_msg_init(&address);
            int rc = zmq_msg_recv(&event, monitor, ZMQ_DONTWAIT);
            if (rc >= 0 && zmq_msg_more(&event)) zmq_msg_recv(&address, monitor, 0);
            if (rc == 6) {
                uint16_t id;
                uint32_t value;
                memcpy(&id, zmq_msg_data(&event), sizeof id);
                memcpy(&value, (uint8_t *)zmq_msg_data(&event) + 2, sizeof value);
                zc_refusals_note(self, self->watches[i].name, id, value);
            }
            zmq_msg_close(&event);
            zmq_msg_close(&address);
            //  Read to empty, so that the descriptor signals the next event.
            if (rc < 0 && zmq_errno() != EINTR) break;
        }
    }
    s_summary(self, zclock_mono());
}

uint64_t zc_refusals_count(zc_refusals_t *self)
{
    assert(self);
    return self->count;
}
