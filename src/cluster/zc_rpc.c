/*  zc_rpc — cluster RPC over the DEALER/ROUTER plane.

    Why it looks like this. ActionHero's doCluster publishes "run this
    function by name" on Redis pub/sub with a plaintext token and keeps the
    first answer. Here requests go peer to peer over the mesh's private
    plane, only registered methods run, every target answers with a result
    or a typed error, and a call knows which nodes it still waits on, so it
    can fail fast when one of them is removed and report the ones that never
    answered.

    The rpc is an extension of its node (zc_node_hook.h): the node hands it
    REQUEST and REPLY messages, tells it of removed peers, polls its
    completion socket and ticks it for call deadlines. The node knows
    nothing of RPC.

    This file is the rpc and its serving side; zc_rpc_call.c is the
    calling side, zc_rpc_conn.c the connection map. Calls are kept in a
    slot table that the correlation id (the header's corr field) indexes
    (zc_rpc_internal.h). A reply whose call is gone (timed out or destroyed)
    is counted as late and dropped, so it can never complete another call.

    Handlers run on a zc_pool_t (first come, first served), so a slow
    handler delays only the requests queued behind the busy threads. A
    finished request goes back to the node's thread on a lock-free stack
    (an eventfd wakes the node's thread when the stack was empty), and the
    node's thread sends the reply, since it owns the sockets. With no
    threads (zc_rpc_set_threads 0) a handler runs on the node's thread, on
    the message's own bytes, and its answer to a peer is sent as it gives
    it: no request is allocated or copied.
*/
#include "zc_log.h"
#include "zc_node_hook.h"
#include "zc_rpc_internal.h"

#include <errno.h>
#include <jansson.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define THREADS_DEFAULT 2
#define THREADS_MAX     64

typedef struct {
    zc_rpc_method_fn *fn;
    void *arg;
} s_method_t;

struct _zc_rpc_request_t {
    zc_rpc_t *rpc;
    const char *caller; //  the message's, inline; a copy in text, on the pool
    const char *method;
    uint64_t corr;
    const uint8_t *args;
    size_t size;
    s_method_t handler;
    int answered;
    int send_now;      //  inline for a peer: the answer goes out from zc_rpc_respond/fail
    zc_error_t status; //  ZC_OK or ZC_ERR_HANDLER
    int code;
    char *error;
    uint8_t *result;
    size_t result_size;
    zc_rpc_request_t *next; //  on the rpc's stack of finished requests
    char text[];            //  on the pool: caller, method and args, copied
};

static const char *s_builtins[] = {"ping", "info", "methods"};

//  --------------------------------------------------------------------------
//  The zc.error payload's status numbers belong to the wire protocol
//  (docs/PROTOCOL.md) and never change; this table, indexed by the wire
//  number, is the one place that maps them to and from zc_error_t.

static const zc_error_t s_wire_status[] = {
    ZC_OK,                     //  0: not sent (a success is a zc.ok reply)
    ZC_ERR_UNKNOWN_METHOD,     //  1
    ZC_ERR_HANDLER,            //  2
    ZC_ERR_TIMEOUT,            //  3
    ZC_ERR_PEER_GONE,          //  4
    ZC_ERR_NO_ROUTE,           //  5
    ZC_ERR_UNKNOWN_CONNECTION, //  6
    ZC_ERR_INVALID             //  7
};
#define WIRE_STATUS_MAX 7

//  A failure's wire number; a kind the wire has no number for goes as a
//  handler error.
static int s_status_to_wire(zc_error_t status)
{
    for (int i = 1; i <= WIRE_STATUS_MAX; i++)
        if (s_wire_status[i] == status) return i;
    return 2;
}

//  A wire number's kind; an unknown number reads as a handler error.
static zc_error_t s_status_from_wire(uint64_t number)
{
    return number >= 1 && number <= WIRE_STATUS_MAX ? s_wire_status[number] : ZC_ERR_HANDLER;
}

//  --------------------------------------------------------------------------
//  Errors of the rpc's own functions

zc_error_t zc_rpc_error(zc_rpc_t *self)
{
    assert(self);
    return self->failure.kind;
}

const char *zc_rpc_errstr(zc_rpc_t *self)
{
    assert(self);
    return self->failure.text;
}

//  --------------------------------------------------------------------------
//  Requests and the handler pool

static void s_send_reply(zc_rpc_t *self, const char *caller, uint64_t corr, zc_error_t status,
                         int code, const char *error, const void *data, size_t size);

//  Frees what an answer kept (a request served inline lives on the stack).
static void s_request_clear(zc_rpc_request_t *request)
{
    free(request->error);
    free(request->result);
    request->error = NULL;
    request->result = NULL;
}

static void s_request_destroy(zc_rpc_request_t **request_p)
{
    zc_rpc_request_t *request = *request_p;
    if (request) {
        s_request_clear(request);
        free(request);
        *request_p = NULL;
    }
}

//  A request for the pool: one allocation holding what the message held.
static zc_rpc_request_t *s_request_copy(zc_rpc_t *self, const zc_rpc_request_t *from)
{
    size_t caller_len = strlen(from->caller) + 1, method_len = strlen(from->method) + 1;
    zc_rpc_request_t *request =
        (zc_rpc_request_t *)malloc(sizeof(zc_rpc_request_t) + caller_len + method_len + from->size);
    assert(request);
    *request = *from;
    request->rpc = self;
    memcpy(request->text, from->caller, caller_len);
    memcpy(request->text + caller_len, from->method, method_len);
    if (from->size) memcpy(request->text + caller_len + method_len, from->args, from->size);
    request->caller = request->text;
    request->method = request->text + caller_len;
    request->args = (const uint8_t *)request->text + caller_len + method_len;
    return request;
}

const char *zc_rpc_request_caller(zc_rpc_request_t *request)
{
    return request->caller;
}

const char *zc_rpc_request_method(zc_rpc_request_t *request)
{
    return request->method;
}

const void *zc_rpc_request_args(zc_rpc_request_t *request)
{
    return request->args;
}

size_t zc_rpc_request_size(zc_rpc_request_t *request)
{
    return request->size;
}

void zc_rpc_respond(zc_rpc_request_t *request, const void *result, size_t size)
{
    if (request->answered) return;
    request->answered = 1;
    request->status = ZC_OK;
    if (request->send_now) {
        //  Inline, to a peer: straight from the handler's bytes, no copy kept.
        s_send_reply(request->rpc, request->caller, request->corr, ZC_OK, 0, NULL, result, size);
        return;
    }
    request->result = (uint8_t *)malloc(size ? size : 1);
    assert(request->result);
    if (size) memcpy(request->result, result, size);
    request->result_size = size;
}

void zc_rpc_fail(zc_rpc_request_t *request, int code, const char *message)
{
    if (request->answered) return;
    request->answered = 1;
    request->status = ZC_ERR_HANDLER;
    request->code = code;
    if (request->send_now) {
        s_send_reply(request->rpc, request->caller, request->corr, ZC_ERR_HANDLER, code,
                     message ? message : "", NULL, 0);
        return;
    }
    request->error = strdup(message ? message : "");
}

static void s_run_handler(zc_rpc_request_t *request)
{
    request->handler.fn(request, request->handler.arg);
    if (!request->answered) zc_rpc_fail(request, -1, "the handler gave no result");
}

//  Pool work: runs the handler, then hands the request back to the node's
//  thread, which sends the reply. Pushing is one compare-and-swap; only a
//  push onto an empty stack wakes the node's thread (the others find the
//  stack non-empty, so the node's thread has a wake-up coming, or is
//  awake), which then takes every finished request at once.
static void s_run_pooled(void *item)
{
    zc_rpc_request_t *request = (zc_rpc_request_t *)item;
    s_run_handler(request);
    zc_rpc_t *self = request->rpc;
    zc_rpc_request_t *head = atomic_load_explicit(&self->finished, memory_order_relaxed);
    do
        request->next = head;
    while (!atomic_compare_exchange_weak_explicit(&self->finished, &head, request,
                                                  memory_order_release, memory_order_relaxed));
    if (!head) {
        uint64_t one = 1;
        if (write(self->wake_fd, &one, sizeof one) < 0) {
            //  Only if the counter were full: it is already readable then.
        }
        atomic_fetch_add_explicit(&self->wakes_sent, 1, memory_order_release);
    }
}

//  Pool cancel: a request that never ran is dropped with the rpc.
static void s_drop_pooled(void *item)
{
    zc_rpc_request_t *request = (zc_rpc_request_t *)item;
    s_request_destroy(&request);
}

//  Takes every request the pool finished and sends their replies, oldest
//  first (only drops them once the node is gone). A wake-up sent since the
//  last look is cleared first, so wake_fd is readable only while a push
//  has yet to be taken: a wake-up whose push this takes is cleared on the
//  next look, when its count is seen.
static void s_take_finished(zc_rpc_t *self)
{
    unsigned long sent = atomic_load_explicit(&self->wakes_sent, memory_order_acquire);
    if (sent != self->wakes_cleared) {
        uint64_t count;
        if (read(self->wake_fd, &count, sizeof count) < 0) {
            //  EAGAIN: an earlier read took it already.
        }
        self->wakes_cleared = sent;
    }
    zc_rpc_request_t *list = atomic_exchange_explicit(&self->finished, NULL, memory_order_acquire);
    zc_rpc_request_t *oldest = NULL;
    while (list) { //  the stack is newest first
        zc_rpc_request_t *next = list->next;
        list->next = oldest;
        oldest = list;
        list = next;
    }
    while (oldest) {
        zc_rpc_request_t *request = oldest;
        oldest = request->next;
        self->in_pool--;
        if (self->node)
            s_send_reply(self, request->caller, request->corr, request->status, request->code,
                         request->error, request->result, request->result_size);
        s_request_destroy(&request);
    }
}

//  --------------------------------------------------------------------------
//  Construction

static void s_consume(void *ext, const zc_msg_t *msg);
static void s_peer_removed(void *ext, const char *peer);
static int s_pollitem(void *ext, zmq_pollitem_t *item);
static int s_process(void *ext);
static void s_node_closed(void *ext);
static void s_peer_unreachable(void *ext, const char *peer);

static const zc_node_hook_t s_hook = {(1u << ZC_KIND_REQUEST) | (1u << ZC_KIND_REPLY),
                                      s_consume,
                                      s_peer_removed,
                                      s_pollitem,
                                      s_process,
                                      s_node_closed,
                                      s_peer_unreachable};

zc_rpc_t *zc_rpc_new(zc_node_t *node)
{
    assert(node);
    zc_rpc_t *self = (zc_rpc_t *)calloc(1, sizeof(zc_rpc_t));
    assert(self);
    if (zc_node_attach(node, &s_hook, self)) {
        free(self);
        return NULL;
    }
    self->node = node;
    self->methods = zhashx_new();
    zhashx_set_destructor(self->methods, (zhashx_destructor_fn *)zstr_free);
    self->threads = THREADS_DEFAULT;
    atomic_init(&self->finished, NULL);
    atomic_init(&self->wakes_sent, 0);
    self->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert(self->wake_fd >= 0);
    self->started = zclock_mono();
    return self;
}

//  Stops serving and fails what is pending: the node is going. Handlers
//  that run finish first; requests not started, or finished but unsent,
//  are dropped. Calls still pending complete as peer gone.
static void s_close(zc_rpc_t *self)
{
    self->node = NULL; //  from here, new calls complete at once (ZC_ERR_STATE)
    if (self->pool) {
        zc_pool_cancel(self->pool, s_drop_pooled);
        zc_pool_destroy(&self->pool);
    }
    s_take_finished(self); //  drops them: the node is gone
    zc_rpc_calls_close(self);
}

//  The node is being destroyed before the rpc.
static void s_node_closed(void *ext)
{
    s_close((zc_rpc_t *)ext);
}

void zc_rpc_destroy(zc_rpc_t **self_p)
{
    assert(self_p);
    zc_rpc_t *self = *self_p;
    if (!self) return;
    if (self->node) {
        zc_node_detach(self->node, self);
        s_close(self);
    }
    zc_rpc_calls_destroy(self);
    zhashx_destroy(&self->methods);
    close(self->wake_fd);
    zc_rpc_conn_destroy(&self->connections);
    free(self);
    *self_p = NULL;
}

zc_node_t *zc_rpc_node(zc_rpc_t *self)
{
    assert(self);
    return self->node;
}

int zc_rpc_set_threads(zc_rpc_t *self, int threads)
{
    assert(self);
    if (threads < 0 || threads > THREADS_MAX)
        return zc_failure_set(&self->failure, ZC_ERR_INVALID,
                              "handler threads must be 0..%d, not %d", THREADS_MAX, threads);
    if (self->pool)
        return zc_failure_set(&self->failure, ZC_ERR_STATE, "the handler threads already run");
    self->threads = threads;
    return zc_failure_clear(&self->failure);
}

static int s_builtin_name(const char *method)
{
    for (size_t i = 0; i < sizeof s_builtins / sizeof s_builtins[0]; i++)
        if (strcmp(method, s_builtins[i]) == 0) return 1;
    return 0;
}

int zc_rpc_register(zc_rpc_t *self, const char *method, zc_rpc_method_fn *fn, void *arg)
{
    assert(self);
    if (!zc_wire_name_valid(method) || strncmp(method, "zc.", 3) == 0)
        return zc_failure_set(&self->failure, ZC_ERR_INVALID, "invalid method name '%.100s'",
                              method ? method : "");
    if (!fn)
        return zc_failure_set(&self->failure, ZC_ERR_INVALID, "method '%s' has no handler", method);
    if (s_builtin_name(method) || zhashx_lookup(self->methods, method))
        return zc_failure_set(&self->failure, ZC_ERR_DUPLICATE, "method '%s' is already registered",
                              method);
    s_method_t *entry = (s_method_t *)malloc(sizeof(s_method_t));
    assert(entry);
    entry->fn = fn;
    entry->arg = arg;
    zhashx_insert(self->methods, method, entry);
    return zc_failure_clear(&self->failure);
}

//  --------------------------------------------------------------------------
//  Serving requests

static void s_pack_str(msgpack_packer *pk, const char *s)
{
    size_t len = strlen(s);
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

//  The "stats" of "info": the node's message counters and RPC's own.
static void s_pack_counters(zc_rpc_t *self, msgpack_packer *pk)
{
    zc_mesh_stats_t stats;
    zc_mesh_stats(zc_node_mesh(self->node), &stats);
    const char *names[] = {"sent_public", "sent_group",   "sent_private", "recv_public",
                           "recv_group",  "recv_private", "lost",         "malformed",
                           "refused",     "requests",     "calls"};
    uint64_t values[] = {stats.sent_public,
                         stats.sent_group,
                         stats.sent_private,
                         stats.recv_public,
                         stats.recv_group,
                         stats.recv_private,
                         stats.lost,
                         stats.malformed,
                         stats.refused,
                         self->stats.requests_handled,
                         self->stats.calls_started};
    size_t count = sizeof values / sizeof values[0];
    msgpack_pack_map(pk, count);
    for (size_t i = 0; i < count; i++) {
        s_pack_str(pk, names[i]);
        msgpack_pack_int64(pk, (int64_t)values[i]);
    }
}

//  "info": {id, groups, headers, uptime_ms, stats}, from the node's own
//  accessors.
static void s_pack_info(zc_rpc_t *self, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 5);
    s_pack_str(pk, "id");
    s_pack_str(pk, zc_node_id(self->node));
    s_pack_str(pk, "groups");
    zlist_t *groups = zc_node_groups(self->node);
    msgpack_pack_array(pk, zlist_size(groups));
    for (const char *g = (const char *)zlist_first(groups); g; g = (const char *)zlist_next(groups))
        s_pack_str(pk, g);
    zlist_destroy(&groups);
    s_pack_str(pk, "headers");
    json_t *headers = (json_t *)zc_node_headers(self->node);
    msgpack_pack_map(pk, json_object_size(headers));
    const char *key;
    json_t *value;
    json_object_foreach(headers, key, value)
    {
        s_pack_str(pk, key);
        s_pack_str(pk, json_is_string(value) ? json_string_value(value) : "");
    }
    s_pack_str(pk, "uptime_ms");
    msgpack_pack_int64(pk, zclock_mono() - self->started);
    s_pack_str(pk, "stats");
    s_pack_counters(self, pk);
}

//  The built-in methods, answered on the node's thread.
static void s_builtin(zc_rpc_t *self, const char *method, msgpack_packer *pk)
{
    if (strcmp(method, "methods") == 0) {
        msgpack_pack_array(pk, zhashx_size(self->methods) + 3);
        for (size_t i = 0; i < 3; i++)
            s_pack_str(pk, s_builtins[i]);
        for (void *m = zhashx_first(self->methods); m; m = zhashx_next(self->methods))
            s_pack_str(pk, (const char *)zhashx_cursor(self->methods));
    } else if (strcmp(method, "info") == 0)
        s_pack_info(self, pk);
    else
        msgpack_pack_nil(pk); //  ping
}

//  Sends a reply for corr to caller: zc.ok with the result, or zc.error with
//  [status, code, message].
static void s_send_reply(zc_rpc_t *self, const char *caller, uint64_t corr, zc_error_t status,
                         int code, const char *error, const void *data, size_t size)
{
    if (strcmp(caller, zc_node_id(self->node)) == 0) {
        zc_rpc_deliver(self, caller, corr, status, code, error, data, size);
        return;
    }
    zc_mesh_t *mesh = zc_node_mesh(self->node);
    if (status == ZC_OK) {
        if (zc_mesh_send_to(mesh, caller, ZC_KIND_REPLY, "zc.ok", corr, data, size))
            zc_log(ZC_LOG_WARNING, zc_node_id(self->node), "cannot reply to %s: %s", caller,
                   strerror(errno));
        return;
    }
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_int(&pk, s_status_to_wire(status));
    msgpack_pack_int(&pk, code);
    s_pack_str(&pk, error ? error : "");
    if (zc_mesh_send_to(mesh, caller, ZC_KIND_REPLY, "zc.error", corr, sbuf.data, sbuf.size))
        zc_log(ZC_LOG_WARNING, zc_node_id(self->node), "cannot reply to %s: %s", caller,
               strerror(errno));
    msgpack_sbuffer_destroy(&sbuf);
}

//  Answers a built-in method at once.
static void s_serve_builtin(zc_rpc_t *self, const char *caller, const char *method, uint64_t corr)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    s_builtin(self, method, &pk);
    s_send_reply(self, caller, corr, ZC_OK, 0, NULL, sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy(&sbuf);
}

void zc_rpc_serve(zc_rpc_t *self, const char *caller, const char *method, uint64_t corr,
                  const void *args, size_t size)
{
    self->stats.requests_handled++;
    //  Built-ins cannot be registered, so a registered method is looked up first.
    s_method_t *handler = (s_method_t *)zhashx_lookup(self->methods, method);
    if (!handler) {
        if (s_builtin_name(method))
            s_serve_builtin(self, caller, method, corr);
        else
            s_send_reply(self, caller, corr, ZC_ERR_UNKNOWN_METHOD, 0, "unknown method", NULL, 0);
        return;
    }
    zc_rpc_request_t request = {.rpc = self,
                                .caller = caller,
                                .method = method,
                                .corr = corr,
                                .args = (const uint8_t *)args,
                                .size = size,
                                .handler = *handler};
    if (!self->pool && self->threads > 0) self->pool = zc_pool_new(self->threads);
    if (self->pool) {
        zc_rpc_request_t *pooled = s_request_copy(self, &request);
        if (zc_pool_submit(self->pool, s_run_pooled, pooled) == 0) {
            self->in_pool++;
            return;
        }
        s_request_destroy(&pooled);
    }
    //  Inline: no threads asked for, or none could start. The answer to a
    //  peer goes out as the handler gives it; to this node, after it returns.
    request.send_now = strcmp(caller, zc_node_id(self->node)) != 0;
    s_run_handler(&request);
    if (!request.send_now)
        s_send_reply(self, caller, corr, request.status, request.code, request.error,
                     request.result, request.result_size);
    s_request_clear(&request);
}

//  Parses a zc.error payload [status, code, message].
static void s_parse_error(const zc_msg_t *msg, zc_error_t *status, int *code, char *message,
                          size_t cap)
{
    *status = ZC_ERR_HANDLER;
    *code = 0;
    snprintf(message, cap, "malformed error reply");
    msgpack_unpacked result;
    msgpack_unpacked_init(&result);
    size_t offset = 0;
    if (zc_msg_size(msg) <= 4096 &&
        msgpack_unpack_next(&result, (const char *)zc_msg_data(msg), zc_msg_size(msg), &offset) ==
            MSGPACK_UNPACK_SUCCESS &&
        result.data.type == MSGPACK_OBJECT_ARRAY && result.data.via.array.size == 3) {
        msgpack_object *items = result.data.via.array.ptr;
        if (items[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            *status = s_status_from_wire(items[0].via.u64);
        if (items[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            *code = (int)items[1].via.u64;
        else if (items[1].type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            *code = (int)items[1].via.i64;
        if (items[2].type == MSGPACK_OBJECT_STR)
            snprintf(message, cap, "%.*s", (int)items[2].via.str.size, items[2].via.str.ptr);
    }
    msgpack_unpacked_destroy(&result);
}

//  Hook: a REQUEST or REPLY message for this node.
static void s_consume(void *ext, const zc_msg_t *msg)
{
    zc_rpc_t *self = (zc_rpc_t *)ext;
    if (zc_msg_kind(msg) == ZC_KIND_REQUEST) {
        zc_rpc_serve(self, zc_msg_sender(msg), zc_msg_type(msg), zc_msg_corr(msg), zc_msg_data(msg),
                     zc_msg_size(msg));
        return;
    }
    if (strcmp(zc_msg_type(msg), "zc.ok") == 0) {
        zc_rpc_deliver(self, zc_msg_sender(msg), zc_msg_corr(msg), ZC_OK, 0, NULL, zc_msg_data(msg),
                       zc_msg_size(msg));
        return;
    }
    zc_error_t status;
    int code;
    char message[512];
    s_parse_error(msg, &status, &code, message, sizeof message);
    zc_rpc_deliver(self, zc_msg_sender(msg), zc_msg_corr(msg), status, code, message, NULL, 0);
}

//  Hook: a peer left the node's view.
static void s_peer_removed(void *ext, const char *peer)
{
    zc_rpc_calls_peer_failed((zc_rpc_t *)ext, peer, ZC_ERR_PEER_GONE, "the node left or died");
}

//  Hook: a peer became unreachable from here; its replies cannot come
//  back, so for the calls waiting on it the peer is gone (a new call to it
//  fails as no route).
static void s_peer_unreachable(void *ext, const char *peer)
{
    zc_rpc_calls_peer_failed((zc_rpc_t *)ext, peer, ZC_ERR_PEER_GONE,
                             "unreachable from this node: its connection dropped");
}

//  Hook: sends the replies of finished handlers and expires calls past
//  their deadline. Returns ms until the next deadline, or -1 if none. It
//  runs on every pass of the node's loop, and makes no system call unless
//  a handler finished.
static int s_process(void *ext)
{
    zc_rpc_t *self = (zc_rpc_t *)ext;
    if (atomic_load_explicit(&self->finished, memory_order_relaxed) ||
        atomic_load_explicit(&self->wakes_sent, memory_order_relaxed) != self->wakes_cleared)
        s_take_finished(self);
    return zc_rpc_calls_expire(self);
}

//  Hook: the pool's wake-up, polled with the node's sockets while requests
//  are out on the pool (only the node's thread submits, so a poll that
//  starts with none out cannot miss one). A plain file descriptor: zmq_poll
//  asks a zmq socket for its events with a system call of its own, an fd
//  it only polls.
static int s_pollitem(void *ext, zmq_pollitem_t *item)
{
    zc_rpc_t *self = (zc_rpc_t *)ext;
    if (self->in_pool == 0) return 0;
    *item = (zmq_pollitem_t){.socket = NULL, .fd = self->wake_fd, .events = ZMQ_POLLIN};
    return 1;
}

//  --------------------------------------------------------------------------
//  Connection ids (zc_rpc_conn.h)

zc_rpc_conn_t *zc_rpc_connections(zc_rpc_t *self)
{
    const zc_identity_t *identity = self->node ? zc_node_identity(self->node) : NULL;
    if (!identity) {
        zc_failure_set(&self->failure, ZC_ERR_STATE, "the node is not started");
        return NULL;
    }
    if (!self->connections) self->connections = zc_rpc_conn_new(identity);
    return self->connections;
}

//  Adds or removes (op) a connection id held by this node.
static int s_connection_change(zc_rpc_t *self, const char *connection,
                               int (*op)(zc_rpc_conn_t *, const char *))
{
    assert(self);
    if (!connection || !*connection)
        return zc_failure_set(&self->failure, ZC_ERR_INVALID, "a connection id cannot be empty");
    zc_rpc_conn_t *connections = zc_rpc_connections(self);
    if (!connections) return -1;
    if (op(connections, connection))
        return zc_failure_set(&self->failure, ZC_ERR_REDIS, "%s", zc_rpc_conn_errstr(connections));
    return zc_failure_clear(&self->failure);
}

int zc_rpc_connection_add(zc_rpc_t *self, const char *connection)
{
    return s_connection_change(self, connection, zc_rpc_conn_add);
}

int zc_rpc_connection_remove(zc_rpc_t *self, const char *connection)
{
    return s_connection_change(self, connection, zc_rpc_conn_remove);
}

void zc_rpc_stats(zc_rpc_t *self, zc_rpc_stats_t *stats)
{
    assert(self && stats);
    *stats = self->stats;
}
