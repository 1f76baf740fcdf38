/*  zc_rpc_call — the calling side of RPC: calls, their targets, the
    replies they collect and their deadlines. See zc_rpc.h for the API and
    zc_rpc_internal.h for how it meets the serving side (zc_rpc.c).

    A call waits on a list of node ids. Each answer (a reply, a removed
    peer, a send that failed) takes its node off the list and is kept; the
    call completes when the list is empty, at the first success for
    ALL_FIRST, or at its deadline, and whoever is still on the list then is
    reported missing.
*/
#include "zc_node_hook.h"
#include "zc_rpc_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    zc_rpc_reply_t pub;
    char *node, *error;
    uint8_t *data;
} s_reply_t;

struct _zc_rpc_call_t {
    zc_rpc_t *rpc; //  NULL once the call is complete
    uint64_t corr;
    int target;
    int64_t deadline;
    int64_t started_us; //  for the latency histogram
    int done;
    int status;       //  a zc_error_t once done; -1 until worked out at completion
    zlist_t *waiting; //  node ids still expected to answer
    s_reply_t *replies;
    size_t reply_count;
    zlist_t *missing;
    zc_rpc_done_fn *fn;
    void *arg;
};

//  --------------------------------------------------------------------------
//  Completion and answers

static void s_key(uint64_t corr, char *key)
{
    snprintf(key, 17, "%016" PRIx64, corr);
}

static zc_error_t s_status_of(zc_rpc_call_t *call)
{
    int first_failure = -1, ok = 0;
    for (size_t i = 0; i < call->reply_count; i++) {
        if (call->replies[i].pub.status == ZC_OK)
            ok++;
        else if (first_failure < 0)
            first_failure = (int)call->replies[i].pub.status;
    }
    size_t missing = zlist_size(call->missing);
    if (call->target == ZC_RPC_ALL_FIRST)
        return ok ? ZC_OK : first_failure >= 0 ? (zc_error_t)first_failure : ZC_ERR_TIMEOUT;
    if (first_failure >= 0) return (zc_error_t)first_failure;
    if (missing || call->reply_count == 0) return ZC_ERR_TIMEOUT;
    return ZC_OK;
}

//  Completes a call: whoever did not answer is missing; runs the callback.
static void s_complete(zc_rpc_t *self, zc_rpc_call_t *call)
{
    char key[17];
    s_key(call->corr, key);
    zhashx_delete(self->pending, key);
    for (char *id = (char *)zlist_pop(call->waiting); id; id = (char *)zlist_pop(call->waiting)) {
        zlist_append(call->missing, id);
        free(id);
    }
    if (call->status < 0) call->status = s_status_of(call);
    call->done = 1;
    call->rpc = NULL;
    if (call->status == ZC_OK)
        self->stats.calls_ok++;
    else if (call->status == ZC_ERR_TIMEOUT)
        self->stats.calls_timed_out++;
    else
        self->stats.calls_failed++;
    zc_histogram_observe(&self->stats.latency, (zclock_usecs() - call->started_us) / 1e6);
    if (call->fn) call->fn(self, call, call->arg);
}

static void s_add_reply(zc_rpc_call_t *call, const char *from, zc_error_t status, int code,
                        const char *error, const void *data, size_t size)
{
    call->replies =
        (s_reply_t *)realloc(call->replies, (call->reply_count + 1) * sizeof(s_reply_t));
    assert(call->replies);
    s_reply_t *reply = &call->replies[call->reply_count++];
    reply->node = strdup(from);
    reply->error = status == ZC_OK ? NULL : strdup(error ? error : zc_strerror(status));
    reply->data = NULL;
    if (status == ZC_OK && size) {
        reply->data = (uint8_t *)malloc(size);
        assert(reply->data);
        memcpy(reply->data, data, size);
    }
    reply->pub = (zc_rpc_reply_t){reply->node,  status,      code,
                                  reply->error, reply->data, status == ZC_OK ? size : 0};
    //  The array may have moved: re-point every reply's public view.
    for (size_t i = 0; i < call->reply_count; i++) {
        call->replies[i].pub.node = call->replies[i].node;
        call->replies[i].pub.error = call->replies[i].error;
        call->replies[i].pub.data = call->replies[i].data;
    }
}

//  Removes id from the call's waiting list; returns 1 if it was there.
static int s_unwait(zc_rpc_call_t *call, const char *id)
{
    for (char *w = (char *)zlist_first(call->waiting); w; w = (char *)zlist_next(call->waiting))
        if (strcmp(w, id) == 0) {
            zlist_remove(call->waiting, w);
            free(w);
            return 1;
        }
    return 0;
}

static void s_maybe_complete(zc_rpc_t *self, zc_rpc_call_t *call, int last_ok)
{
    if (zlist_size(call->waiting) == 0 || (call->target == ZC_RPC_ALL_FIRST && last_ok)) {
        call->status = -1;
        s_complete(self, call);
    }
}

void zc_rpc_deliver(zc_rpc_t *self, const char *from, uint64_t corr, zc_error_t status, int code,
                    const char *error, const void *data, size_t size)
{
    char key[17];
    s_key(corr, key);
    zc_rpc_call_t *call = (zc_rpc_call_t *)zhashx_lookup(self->pending, key);
    if (!call || !s_unwait(call, from)) {
        self->stats.late_replies++;
        return;
    }
    s_add_reply(call, from, status, code, error, data, size);
    s_maybe_complete(self, call, status == ZC_OK);
}

void zc_rpc_calls_peer_failed(zc_rpc_t *self, const char *peer, zc_error_t status, const char *why)
{
    zlist_t *affected = zlist_new();
    for (zc_rpc_call_t *call = (zc_rpc_call_t *)zhashx_first(self->pending); call;
         call = (zc_rpc_call_t *)zhashx_next(self->pending))
        zlist_append(affected, call);
    for (zc_rpc_call_t *call = (zc_rpc_call_t *)zlist_first(affected); call;
         call = (zc_rpc_call_t *)zlist_next(affected))
        if (s_unwait(call, peer)) {
            s_add_reply(call, peer, status, 0, why, NULL, 0);
            s_maybe_complete(self, call, 0);
        }
    zlist_destroy(&affected);
}

int zc_rpc_calls_expire(zc_rpc_t *self)
{
    if (zhashx_size(self->pending) == 0) return -1;
    //  next_deadline is never later than the earliest pending deadline (a
    //  scan sets it, each new call can only bring it forward), so before
    //  it nothing can have expired and no call needs looking at.
    int64_t now = zclock_mono(), next = -1;
    if (now < self->next_deadline) return (int)(self->next_deadline - now);
    zlist_t *expired = zlist_new();
    for (zc_rpc_call_t *call = (zc_rpc_call_t *)zhashx_first(self->pending); call;
         call = (zc_rpc_call_t *)zhashx_next(self->pending)) {
        if (call->deadline <= now)
            zlist_append(expired, call);
        else if (next < 0 || call->deadline - now < next)
            next = call->deadline - now;
    }
    for (zc_rpc_call_t *call = (zc_rpc_call_t *)zlist_first(expired); call;
         call = (zc_rpc_call_t *)zlist_next(expired)) {
        call->status = -1;
        s_complete(self, call);
    }
    zlist_destroy(&expired);
    self->next_deadline = next < 0 ? INT64_MAX : now + next;
    return (int)next;
}

void zc_rpc_calls_close(zc_rpc_t *self)
{
    zc_rpc_call_t *call;
    while ((call = (zc_rpc_call_t *)zhashx_first(self->pending)) != NULL) {
        call->status = ZC_ERR_PEER_GONE;
        s_complete(self, call);
    }
}

//  --------------------------------------------------------------------------
//  Starting and waiting

//  Fills targets with the node ids a call goes to. Returns ZC_OK, or the
//  status the call completes with at once.
static zc_error_t s_targets(zc_rpc_t *self, zc_rpc_target_t target, const char *to,
                            const char *method, zlist_t *targets)
{
    if (!self->node || !zc_node_identity(self->node)) return ZC_ERR_STATE;
    if (!zc_wire_name_valid(method)) return ZC_ERR_INVALID;
    if (target == ZC_RPC_NODE) {
        if (!to || !zc_wire_name_valid(to)) return ZC_ERR_INVALID;
        zlist_append(targets, (void *)to);
    } else if (target == ZC_RPC_CONNECTION) {
        char owner[ZC_NAME_MAX + 1];
        zc_rpc_conn_t *connections = zc_rpc_connections(self);
        int rc = to && connections ? zc_rpc_conn_owner(connections, to, owner, sizeof owner) : 1;
        if (rc != 0) return rc > 0 ? ZC_ERR_UNKNOWN_CONNECTION : ZC_ERR_NO_ROUTE;
        zlist_append(targets, owner);
    } else if (target == ZC_RPC_ALL_FIRST || target == ZC_RPC_ALL_GATHER) {
        zlist_append(targets, (void *)zc_node_id(self->node));
        zlist_t *peers = zc_node_peers(self->node);
        for (char *id = (char *)zlist_first(peers); id; id = (char *)zlist_next(peers))
            zlist_append(targets, id);
        zlist_destroy(&peers);
    } else
        return ZC_ERR_INVALID;
    return ZC_OK;
}

//  Sends the request to every target (serving it here for this node);
//  a target that cannot be reached answers at once.
static void s_send_requests(zc_rpc_t *self, zc_rpc_call_t *call, zlist_t *targets,
                            const char *method, const void *args, size_t size)
{
    const char *me = zc_node_id(self->node);
    for (char *id = (char *)zlist_first(targets); id; id = (char *)zlist_next(targets))
        zlist_append(call->waiting, strdup(id));
    for (char *id = (char *)zlist_first(targets); id; id = (char *)zlist_next(targets)) {
        if (strcmp(id, me) == 0)
            zc_rpc_serve(self, id, method, call->corr, args, size);
        else if (zc_node_peer_exists(self->node, id) && !zc_node_peer_reachable(self->node, id)) {
            //  A member whose connection from here dropped: fail now, not at the timeout.
            char why[128];
            snprintf(why, sizeof why, "%s is unreachable from this node", id);
            if (s_unwait(call, id)) s_add_reply(call, id, ZC_ERR_NO_ROUTE, 0, why, NULL, 0);
        } else if (zc_mesh_send_to(zc_node_mesh(self->node), id, ZC_KIND_REQUEST, method,
                                   call->corr, args, size)) {
            zc_error_t status = errno == EHOSTUNREACH ? ZC_ERR_NO_ROUTE : ZC_ERR_INVALID;
            char why[128];
            snprintf(why, sizeof why, "cannot send to %s: %s", id, strerror(errno));
            if (s_unwait(call, id)) s_add_reply(call, id, status, 0, why, NULL, 0);
        }
        if (call->done) break; //  a local reply completed it
    }
}

zc_rpc_call_t *zc_rpc_start(zc_rpc_t *self, zc_rpc_target_t target, const char *to,
                            const char *method, const void *args, size_t size, int timeout_ms,
                            zc_rpc_done_fn *fn, void *arg)
{
    assert(self);
    zc_rpc_call_t *call = (zc_rpc_call_t *)calloc(1, sizeof(zc_rpc_call_t));
    assert(call);
    call->rpc = self;
    call->corr = ++self->next_corr;
    call->target = target;
    call->deadline = zclock_mono() + (timeout_ms > 0 ? timeout_ms : ZC_RPC_TIMEOUT_DEFAULT);
    call->started_us = zclock_usecs();
    if (call->deadline < self->next_deadline) self->next_deadline = call->deadline;
    call->status = -1;
    call->waiting = zlist_new();
    call->missing = zlist_new();
    zlist_autofree(call->missing);
    call->fn = fn;
    call->arg = arg;
    self->stats.calls_started++;
    char key[17];
    s_key(call->corr, key);
    zhashx_insert(self->pending, key, call);

    zlist_t *targets = zlist_new();
    zlist_autofree(targets);
    zc_error_t immediate = s_targets(self, target, to, method, targets);
    if (immediate != ZC_OK) {
        call->status = immediate;
        s_complete(self, call);
    } else {
        s_send_requests(self, call, targets, method, args, size);
        if (!call->done) s_maybe_complete(self, call, 0);
    }
    zlist_destroy(&targets);
    return call;
}

zc_error_t zc_rpc_wait(zc_rpc_t *self, zc_rpc_call_t *call)
{
    assert(self && call);
    //  A call outlives its node only completed (s_close), so self->node is
    //  set while the call is pending.
    while (!call->done && self->node) {
        long left = (long)(call->deadline - zclock_mono());
        zc_node_run(self->node, left > 0 ? (int)left : 0);
    }
    return zc_rpc_call_status(call);
}

zc_rpc_call_t *zc_rpc_call(zc_rpc_t *self, zc_rpc_target_t target, const char *to,
                           const char *method, const void *args, size_t size, int timeout_ms)
{
    zc_rpc_call_t *call =
        zc_rpc_start(self, target, to, method, args, size, timeout_ms, NULL, NULL);
    zc_rpc_wait(self, call);
    return call;
}

int zc_rpc_call_done(zc_rpc_call_t *call)
{
    return call->done;
}

zc_error_t zc_rpc_call_status(zc_rpc_call_t *call)
{
    return call->done ? (zc_error_t)call->status : ZC_ERR_STATE;
}

size_t zc_rpc_call_replies(zc_rpc_call_t *call)
{
    return call->reply_count;
}

const zc_rpc_reply_t *zc_rpc_call_reply(zc_rpc_call_t *call, size_t index)
{
    return index < call->reply_count ? &call->replies[index].pub : NULL;
}

size_t zc_rpc_call_missing(zc_rpc_call_t *call)
{
    return zlist_size(call->missing);
}

const char *zc_rpc_call_missing_node(zc_rpc_call_t *call, size_t index)
{
    const char *id = (const char *)zlist_first(call->missing);
    for (size_t i = 0; id && i < index; i++)
        id = (const char *)zlist_next(call->missing);
    return id;
}

void zc_rpc_call_destroy(zc_rpc_call_t **call_p)
{
    zc_rpc_call_t *call = *call_p;
    if (!call) return;
    if (call->rpc) {
        //  Still pending: forget it, so a late reply is only counted.
        char key[17];
        s_key(call->corr, key);
        zhashx_delete(call->rpc->pending, key);
    }
    for (char *id = (char *)zlist_pop(call->waiting); id; id = (char *)zlist_pop(call->waiting))
        free(id);
    zlist_destroy(&call->waiting);
    zlist_destroy(&call->missing);
    for (size_t i = 0; i < call->reply_count; i++) {
        free(call->replies[i].node);
        free(call->replies[i].error);
        free(call->replies[i].data);
    }
    free(call->replies);
    free(call);
    *call_p = NULL;
}
