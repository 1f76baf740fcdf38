/*  zc_node_control — the reserved control messages of a node: kill
    requests (zc.kill), named confirmations (zc.confirm) and the probe that
    tells a node its publishes reach a peer (zc.probe, zc.reached; the
    slow joiner). docs/PROTOCOL.md section 12 gives their payloads.
*/
#include "zc_log.h"
#include "zc_node_internal.h"

#include <errno.h>
#include <msgpack.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  Handlers

static void s_on_kill(zc_mesh_t *mesh, const zc_msg_t *msg, void *arg)
{
    zc_node_t *self = (zc_node_t *)arg;
    msgpack_unpacked result;
    msgpack_unpacked_init(&result);
    size_t offset = 0;
    int code = -1;
    if (msgpack_unpack_next(&result, (const char *)zc_msg_data(msg), zc_msg_size(msg), &offset) ==
            MSGPACK_UNPACK_SUCCESS &&
        result.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER && result.data.via.u64 <= 255)
        code = (int)result.data.via.u64;
    msgpack_unpacked_destroy(&result);
    if (code < 0) {
        zc_log(ZC_LOG_WARNING, zc_node_id(self), "ignored a malformed kill request from %s",
               zc_msg_sender(msg));
        return;
    }
    zc_log(ZC_LOG_INFO, zc_node_id(self), "%s asked this node to exit with code %d",
           zc_msg_sender(msg), code);
    if (self->kill_fn)
        self->kill_fn(self, zc_msg_sender(msg), code, self->kill_arg);
    else {
        self->kill_requested = 1;
        self->kill_code = code;
    }
}

//  A peer that hears our probe has its SUB subscribed to our PUB; it says
//  so privately, since the DEALER queues the answer until it is connected.
static void s_on_probe(zc_mesh_t *mesh, const zc_msg_t *msg, void *arg)
{
    zc_mesh_whisper(mesh, zc_msg_sender(msg), "zc.reached", "", 0);
}

static void s_on_reached(zc_mesh_t *mesh, const zc_msg_t *msg, void *arg)
{
    zc_node_t *self = (zc_node_t *)arg;
    node_peer_t *info = (node_peer_t *)zhashx_lookup(self->peers, zc_msg_sender(msg));
    if (info) info->reached = 1;
}

static void s_on_confirm(zc_mesh_t *mesh, const zc_msg_t *msg, void *arg)
{
    zc_node_t *self = (zc_node_t *)arg;
    char name[ZC_NAME_MAX + 1];
    size_t size = zc_msg_size(msg);
    if (size == 0 || size > ZC_NAME_MAX) return;
    memcpy(name, zc_msg_data(msg), size);
    name[size] = 0;
    if (!zc_wire_name_valid(name)) return;
    zhashx_t *set = (zhashx_t *)zhashx_lookup(self->confirmations, name);
    if (!set) {
        set = zhashx_new();
        zhashx_insert(self->confirmations, name, set);
    }
    zhashx_update(set, zc_msg_sender(msg), (void *)1);
}

void node_control_attach(zc_node_t *self)
{
    zc_mesh_on(self->mesh, "zc.kill", s_on_kill, self);
    zc_mesh_on(self->mesh, "zc.confirm", s_on_confirm, self);
    zc_mesh_on(self->mesh, "zc.probe", s_on_probe, self);
    zc_mesh_on(self->mesh, "zc.reached", s_on_reached, self);
}

//  --------------------------------------------------------------------------
//  Kill and confirmations

int zc_node_kill(zc_node_t *self, const char *peer, int exit_code)
{
    assert(self);
    if (exit_code < 0 || exit_code > 255) {
        errno = EINVAL;
        return -1;
    }
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_int(&pk, exit_code);
    int rc = zc_mesh_whisper(self->mesh, peer, "zc.kill", sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy(&sbuf);
    return rc;
}

int zc_node_confirm(zc_node_t *self, const char *name)
{
    assert(self);
    if (!zc_wire_name_valid(name)) {
        errno = EINVAL;
        return -1;
    }
    return zc_mesh_publish(self->mesh, "zc.confirm", name, strlen(name));
}

zlist_t *zc_node_wait_confirmations(zc_node_t *self, const char *name, size_t count, int timeout_ms)
{
    assert(self && self->started);
    int64_t deadline = zclock_mono() + timeout_ms;
    while (1) {
        zhashx_t *set = name ? (zhashx_t *)zhashx_lookup(self->confirmations, name) : NULL;
        if (set && zhashx_size(set) >= count) {
            zlist_t *ids = zlist_new();
            zlist_autofree(ids);
            for (void *v = zhashx_first(set); v; v = zhashx_next(set))
                zlist_append(ids, (void *)zhashx_cursor(set));
            zc_failure_clear(&self->failure);
            return ids;
        }
        long wait = (long)(deadline - zclock_mono());
        if (wait <= 0) {
            zc_failure_set(&self->failure, ZC_ERR_TIMEOUT,
                           "%zu of %zu peers confirmed '%.100s' in time",
                           set ? zhashx_size(set) : 0, count, name ? name : "");
            return NULL;
        }
        zc_node_run(self, (int)wait);
    }
}

//  --------------------------------------------------------------------------
//  Waiting for peers (the slow joiner)

//  Probes are published this often while a wait lasts.
#define PROBE_IVL_MS 100

static size_t s_reached_count(zc_node_t *self)
{
    size_t count = 0;
    for (void *p = zhashx_first(self->peers); p; p = zhashx_next(self->peers))
        count += ((node_peer_t *)p)->reached ? 1 : 0;
    return count;
}

int zc_node_wait_peers(zc_node_t *self, size_t count, int timeout_ms)
{
    assert(self && self->started);
    int64_t deadline = zclock_mono() + timeout_ms;
    int64_t next_probe = 0;
    while (s_reached_count(self) < count) {
        int64_t now = zclock_mono();
        if (now >= deadline)
            return zc_failure_set(&self->failure, ZC_ERR_TIMEOUT,
                                  "%zu of %zu peers reachable in time (%zu known)",
                                  s_reached_count(self), count, zhashx_size(self->peers));
        if (now >= next_probe && zhashx_size(self->peers) > s_reached_count(self)) {
            zc_mesh_publish(self->mesh, "zc.probe", "", 0);
            next_probe = now + PROBE_IVL_MS;
        }
        //  Never longer than a probe interval: a peer added inside the run
        //  wakes nothing, and it needs a probe.
        int64_t until = now + PROBE_IVL_MS < deadline ? now + PROBE_IVL_MS : deadline;
        zc_node_run(self, (int)(until - now));
    }
    return zc_failure_clear(&self->failure);
}
