/*  zc_rpc_call — the calling side of RPC: calls, their targets, the
    replies they collect and their deadlines. See zc_rpc.h for the API and
    zc_rpc_internal.h for how it meets the serving side (zc_rpc.c).

    A call knows the node ids it went to and which of them answered. Each
    answer (a reply, a removed peer, a send that failed) marks its node and
    is kept; the call completes when every node answered, at the first
    success for ALL_FIRST, or at its deadline, and the nodes that had not
    answered then are reported missing.

    Why it is laid out like this: a call to one node is the common case
    and the one that must cost little, so such a call is one allocation:
    its target's id, its reply and a small result live inside it. Calls to
    all nodes allocate their target list and reply array once, sized for
    every node, so a reply never moves another. A pending call sits in the
    rpc's slot table (zc_rpc_internal.h), where its reply finds it.
*/
#include "zc_node_hook.h"
#include "zc_rpc_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define INLINE_DATA 192 //  results up to this size are kept inside the reply

typedef struct {
    zc_rpc_reply_t pub;
    char node[ZC_NAME_MAX + 1];
    char *error;
    uint8_t *data; //  a copy of a larger result
    uint8_t small[INLINE_DATA];
} s_reply_t;

struct _zc_rpc_call_t {
    zc_rpc_t *rpc; //  NULL once the call is complete
    uint64_t corr;
    int target;
    int done;
    int status; //  a zc_error_t once done; -1 until worked out at completion
    int64_t deadline;
    int64_t started_us; //  for the latency histogram
    char **ids;         //  the nodes the call went to
    unsigned char *answered;
    size_t id_count;
    size_t waiting; //  ids not answered: once done, the missing ones
    s_reply_t *replies;
    size_t reply_count;
    zc_rpc_done_fn *fn;
    void *arg;
    //  A call to one node: ids, answered and replies point here.
    char *one_id;
    unsigned char one_answered;
    char one_name[ZC_NAME_MAX + 1];
    s_reply_t one_reply;
};

//  --------------------------------------------------------------------------
//  The pending-call table

//  Puts call in the next free slot after the last one taken (growing the
//  table to keep it at most half full, so the next free one is near) and
//  gives it its corr. Slots are taken in turn, not the last freed first:
//  a node's first calls are corr 1, 2, 3..., and a slot is reused as late
//  as it can be. Slot 0 is never used, so no corr is 0.
static void s_slot_take(zc_rpc_t *self, zc_rpc_call_t *call)
{
    if ((self->pending + 2) * 2 > self->slot_count) {
        uint32_t count = self->slot_count ? self->slot_count * 2 : 64;
        self->slots = (zc_rpc_slot_t *)realloc(self->slots, count * sizeof(zc_rpc_slot_t));
        assert(self->slots);
        memset(self->slots + self->slot_count, 0,
               (count - self->slot_count) * sizeof(zc_rpc_slot_t));
        self->slot_count = count;
    }
    uint32_t index = self->slot_cursor;
    do
        index = index + 1 < self->slot_count ? index + 1 : 1;
    while (self->slots[index].call);
    self->slot_cursor = index;
    zc_rpc_slot_t *slot = &self->slots[index];
    slot->call = call;
    call->corr = (uint64_t)slot->generation << 32 | index;
    self->pending++;
}

//  Takes call out of its slot; the slot's next call gets a new corr.
static void s_slot_release(zc_rpc_t *self, zc_rpc_call_t *call)
{
    zc_rpc_slot_t *slot = &self->slots[(uint32_t)call->corr];
    assert(slot->call == call);
    slot->call = NULL;
    slot->generation++;
    self->pending--;
}

//  The pending call with corr, or NULL.
static zc_rpc_call_t *s_slot_call(zc_rpc_t *self, uint64_t corr)
{
    uint32_t index = (uint32_t)corr;
    if (index >= self->slot_count || self->slots[index].generation != (uint32_t)(corr >> 32))
        return NULL;
    return self->slots[index].call;
}

void zc_rpc_calls_destroy(zc_rpc_t *self)
{
    free(self->slots);
    self->slots = NULL;
    self->slot_count = 0;
}

//  --------------------------------------------------------------------------
//  Completion and answers

static zc_error_t s_status_of(zc_rpc_call_t *call)
{
    int first_failure = -1, ok = 0;
    for (size_t i = 0; i < call->reply_count; i++) {
        if (call->replies[i].pub.status == ZC_OK)
            ok++;
        else if (first_failure < 0)
            first_failure = (int)call->replies[i].pub.status;
    }
    if (call->target == ZC_RPC_ALL_FIRST)
        return ok ? ZC_OK : first_failure >= 0 ? (zc_error_t)first_failure : ZC_ERR_TIMEOUT;
    if (first_failure >= 0) return (zc_error_t)first_failure;
    if (call->waiting || call->reply_count == 0) return ZC_ERR_TIMEOUT;
    return ZC_OK;
}

//  Completes a call: whoever did not answer is missing; runs the callback.
static void s_complete(zc_rpc_t *self, zc_rpc_call_t *call)
{
    s_slot_release(self, call);
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

//  Keeps one node's answer (the node was marked answered: one each).
static void s_add_reply(zc_rpc_call_t *call, const char *from, zc_error_t status, int code,
                        const char *error, const void *data, size_t size)
{
    assert(call->reply_count < call->id_count);
    s_reply_t *reply = &call->replies[call->reply_count++];
    size_t len = strlen(from);
    memcpy(reply->node, from, len + 1);
    reply->error = status == ZC_OK ? NULL : strdup(error ? error : zc_strerror(status));
    reply->data = NULL;
    const uint8_t *copy = NULL;
    if (status == ZC_OK && size) {
        if (size > INLINE_DATA) {
            reply->data = (uint8_t *)malloc(size);
            assert(reply->data);
        }
        uint8_t *to = reply->data ? reply->data : reply->small;
        memcpy(to, data, size);
        copy = to;
    }
    reply->pub =
        (zc_rpc_reply_t){reply->node, status, code, reply->error, copy, status == ZC_OK ? size : 0};
}

//  Marks id answered; returns 1 if the call was waiting for it.
static int s_unwait(zc_rpc_call_t *call, const char *id)
{
    for (size_t i = 0; i < call->id_count; i++)
        if (!call->answered[i] && strcmp(call->ids[i], id) == 0) {
            call->answered[i] = 1;
            call->waiting--;
            return 1;
        }
    return 0;
}

static void s_maybe_complete(zc_rpc_t *self, zc_rpc_call_t *call, int last_ok)
{
    if (call->waiting == 0 || (call->target == ZC_RPC_ALL_FIRST && last_ok)) {
        call->status = -1;
        s_complete(self, call);
    }
}

void zc_rpc_deliver(zc_rpc_t *self, const char *from, uint64_t corr, zc_error_t status, int code,
                    const char *error, const void *data, size_t size)
{
    zc_rpc_call_t *call = s_slot_call(self, corr);
    if (!call || !s_unwait(call, from)) {
        self->stats.late_replies++;
        return;
    }
    s_add_reply(call, from, status, code, error, data, size);
    s_maybe_complete(self, call, status == ZC_OK);
}

//  A callback may start or destroy calls while these walk the table: each
//  step reads the table afresh, and a call started meanwhile has its own
//  deadline accounted by zc_rpc_start.

void zc_rpc_calls_peer_failed(zc_rpc_t *self, const char *peer, zc_error_t status, const char *why)
{
    for (uint32_t i = 0; i < self->slot_count; i++) {
        zc_rpc_call_t *call = self->slots[i].call;
        if (call && s_unwait(call, peer)) {
            s_add_reply(call, peer, status, 0, why, NULL, 0);
            s_maybe_complete(self, call, 0);
        }
    }
}

int zc_rpc_calls_expire(zc_rpc_t *self)
{
    if (self->pending == 0) return -1;
    //  next_deadline is never later than the earliest pending deadline (a
    //  scan sets it, each new call can only bring it forward), so before
    //  it nothing can have expired and no call needs looking at.
    int64_t now = zclock_mono();
    if (now < self->next_deadline) return (int)(self->next_deadline - now);
    self->next_deadline = INT64_MAX;
    for (uint32_t i = 0; i < self->slot_count; i++) {
        zc_rpc_call_t *call = self->slots[i].call;
        if (!call) continue;
        if (call->deadline <= now) {
            call->status = -1;
            s_complete(self, call);
        } else if (call->deadline < self->next_deadline)
            self->next_deadline = call->deadline;
    }
    return self->pending ? (int)(self->next_deadline - now) : -1;
}

void zc_rpc_calls_close(zc_rpc_t *self)
{
    for (uint32_t i = 0; i < self->slot_count; i++) {
        zc_rpc_call_t *call = self->slots[i].call;
        if (call) {
            call->status = ZC_ERR_PEER_GONE;
            s_complete(self, call);
        }
    }
}

//  --------------------------------------------------------------------------
//  Starting and waiting

//  The call goes to one node, id (a valid name: it fits).
static void s_target_one(zc_rpc_call_t *call, const char *id)
{
    memcpy(call->one_name, id, strlen(id) + 1);
    call->one_id = call->one_name;
    call->ids = &call->one_id;
    call->answered = &call->one_answered;
    call->replies = &call->one_reply;
    call->id_count = call->waiting = 1;
}

//  The call goes to this node and every peer.
static void s_target_all(zc_rpc_t *self, zc_rpc_call_t *call)
{
    zlist_t *peers = zc_node_peers(self->node);
    size_t count = 1 + zlist_size(peers);
    call->ids = (char **)malloc(count * sizeof(char *));
    call->answered = (unsigned char *)calloc(count, 1);
    call->replies = (s_reply_t *)malloc(count * sizeof(s_reply_t));
    assert(call->ids && call->answered && call->replies);
    call->ids[0] = strdup(zc_node_id(self->node));
    size_t n = 1;
    for (char *id = (char *)zlist_first(peers); id; id = (char *)zlist_next(peers))
        call->ids[n++] = strdup(id);
    zlist_destroy(&peers);
    call->id_count = call->waiting = count;
}

//  Sets the nodes a call goes to. Returns ZC_OK, or the status the call
//  completes with at once.
static zc_error_t s_targets(zc_rpc_t *self, zc_rpc_call_t *call, zc_rpc_target_t target,
                            const char *to, const char *method)
{
    if (!self->node || !zc_node_identity(self->node)) return ZC_ERR_STATE;
    if (!zc_wire_name_valid(method)) return ZC_ERR_INVALID;
    if (target == ZC_RPC_NODE) {
        if (!to || !zc_wire_name_valid(to)) return ZC_ERR_INVALID;
        s_target_one(call, to);
    } else if (target == ZC_RPC_CONNECTION) {
        char owner[ZC_NAME_MAX + 1];
        zc_rpc_conn_t *connections = zc_rpc_connections(self);
        int rc = to && connections ? zc_rpc_conn_owner(connections, to, owner, sizeof owner) : 1;
        if (rc != 0) return rc > 0 ? ZC_ERR_UNKNOWN_CONNECTION : ZC_ERR_NO_ROUTE;
        s_target_one(call, owner);
    } else if (target == ZC_RPC_ALL_FIRST || target == ZC_RPC_ALL_GATHER)
        s_target_all(self, call);
    else
        return ZC_ERR_INVALID;
    return ZC_OK;
}

//  Answers for node id at once: the request could not go.
static void s_unsent(zc_rpc_call_t *call, const char *id, zc_error_t status, const char *why)
{
    if (s_unwait(call, id)) s_add_reply(call, id, status, 0, why, NULL, 0);
}

//  Sends the request to every target (serving it here for this node);
//  a target that cannot be reached answers at once.
static void s_send_requests(zc_rpc_t *self, zc_rpc_call_t *call, const char *method,
                            const void *args, size_t size)
{
    const char *me = zc_node_id(self->node);
    for (size_t i = 0; i < call->id_count && !call->done; i++) {
        const char *id = call->ids[i];
        char why[128];
        if (strcmp(id, me) == 0)
            zc_rpc_serve(self, id, method, call->corr, args, size); //  may complete the call
        else if (!zc_node_peer_reachable(self->node, id) && zc_node_peer_exists(self->node, id)) {
            //  A member whose connection from here dropped: fail now, not at the timeout.
            snprintf(why, sizeof why, "%s is unreachable from this node", id);
            s_unsent(call, id, ZC_ERR_NO_ROUTE, why);
        } else if (zc_mesh_send_to(zc_node_mesh(self->node), id, ZC_KIND_REQUEST, method,
                                   call->corr, args, size)) {
            zc_error_t status = errno == EHOSTUNREACH ? ZC_ERR_NO_ROUTE : ZC_ERR_INVALID;
            snprintf(why, sizeof why, "cannot send to %s: %s", id, strerror(errno));
            s_unsent(call, id, status, why);
        }
    }
}

zc_rpc_call_t *zc_rpc_start(zc_rpc_t *self, zc_rpc_target_t target, const char *to,
                            const char *method, const void *args, size_t size, int timeout_ms,
                            zc_rpc_done_fn *fn, void *arg)
{
    assert(self);
    zc_rpc_call_t *call = (zc_rpc_call_t *)malloc(sizeof(zc_rpc_call_t));
    assert(call);
    //  Only the head is cleared: the inline id, reply and result are
    //  written before they are read.
    memset(call, 0, offsetof(zc_rpc_call_t, one_name));
    call->rpc = self;
    call->target = target;
    call->started_us = zclock_usecs();
    call->deadline =
        call->started_us / 1000 + (timeout_ms > 0 ? timeout_ms : ZC_RPC_TIMEOUT_DEFAULT);
    if (call->deadline < self->next_deadline) self->next_deadline = call->deadline;
    call->status = -1;
    call->fn = fn;
    call->arg = arg;
    self->stats.calls_started++;
    s_slot_take(self, call);

    zc_error_t immediate = s_targets(self, call, target, to, method);
    if (immediate != ZC_OK) {
        call->status = immediate;
        s_complete(self, call);
    } else {
        s_send_requests(self, call, method, args, size);
        if (!call->done) s_maybe_complete(self, call, 0);
    }
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
    return call->done ? call->waiting : 0;
}

const char *zc_rpc_call_missing_node(zc_rpc_call_t *call, size_t index)
{
    for (size_t i = 0; call->done && i < call->id_count; i++)
        if (!call->answered[i] && index-- == 0) return call->ids[i];
    return NULL;
}

void zc_rpc_call_destroy(zc_rpc_call_t **call_p)
{
    zc_rpc_call_t *call = *call_p;
    if (!call) return;
    if (call->rpc) s_slot_release(call->rpc, call); //  still pending: a late reply is only counted
    for (size_t i = 0; i < call->reply_count; i++) {
        free(call->replies[i].error);
        free(call->replies[i].data);
    }
    if (call->ids != &call->one_id) {
        for (size_t i = 0; i < call->id_count; i++)
            free(call->ids[i]);
        free(call->ids);
        free(call->answered);
        free(call->replies);
    }
    free(call);
    *call_p = NULL;
}
