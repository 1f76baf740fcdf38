/*  zc_rpc — cluster RPC over the DEALER/ROUTER plane.

    Why it looks like this. ActionHero's doCluster publishes "run this
    function by name" on Redis pub/sub with a plaintext token and keeps the
    first answer. Here requests go peer to peer over the mesh's private
    plane, only registered methods run, every target answers with a result
    or a typed error, and a call knows which nodes it still waits on, so it
    can fail fast when one of them is removed and report the ones that never
    answered.

    Calls are kept in a table by correlation id (a per-node counter carried
    in the header's corr field). A reply whose call is gone (timed out or
    destroyed) is counted as late and dropped, so it can never complete
    another call.

    Handlers run on a small thread pool fed from a mutex-protected queue:
    an idle thread takes the next request, so a slow handler delays only
    the requests queued behind the busy threads. A finished request goes
    back to the node's thread through an inproc PUSH/PULL pair, and the
    node's thread sends the reply, since it owns the sockets.
*/
#include "zc_rpc.h"
#include "zc_log.h"
#include "zc_node_rpc.h"

#include <czmq.h>
#include <errno.h>
#include <jansson.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    zc_rpc_method_fn *fn;
    void *arg;
} s_method_t;

struct _zc_rpc_request_t {
    char caller[ZC_NAME_MAX + 1];
    char method[ZC_NAME_MAX + 1];
    uint64_t corr;
    uint8_t *args;
    size_t size;
    s_method_t handler;
    int answered;
    int status; //  OK or HANDLER_ERROR
    int code;
    char *error;
    uint8_t *result;
    size_t result_size;
};

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
    int done;
    int status;
    zlist_t *waiting; //  node ids still expected to answer
    s_reply_t *replies;
    size_t reply_count;
    zlist_t *missing;
    zc_rpc_done_fn *fn;
    void *arg;
};

struct _zc_rpc_t {
    zc_node_t *node;
    zhashx_t *methods; //  name -> s_method_t
    zhashx_t *pending; //  corr as hex -> zc_rpc_call_t (not owned)
    uint64_t next_corr;
    int threads;
    pthread_t *workers;
    int started_threads;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    zlist_t *jobs;
    int stopping;
    zsock_t *done;
    char done_endpoint[64];
    redisContext *redis;
    int64_t started;
    zc_rpc_stats_t stats;
};

static const char *s_builtins[] = {"ping", "info", "methods"};

//  --------------------------------------------------------------------------
//  Requests and their handler threads

static void s_request_destroy(zc_rpc_request_t **request_p)
{
    zc_rpc_request_t *request = *request_p;
    if (request) {
        free(request->args);
        free(request->error);
        free(request->result);
        free(request);
        *request_p = NULL;
    }
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
    request->status = ZC_RPC_OK;
    request->result = (uint8_t *)malloc(size ? size : 1);
    assert(request->result);
    if (size) memcpy(request->result, result, size);
    request->result_size = size;
}

void zc_rpc_fail(zc_rpc_request_t *request, int code, const char *message)
{
    if (request->answered) return;
    request->answered = 1;
    request->status = ZC_RPC_HANDLER_ERROR;
    request->code = code;
    request->error = strdup(message ? message : "");
}

static void s_run_handler(zc_rpc_request_t *request)
{
    request->handler.fn(request, request->handler.arg);
    if (!request->answered) zc_rpc_fail(request, -1, "the handler gave no result");
}

static void *s_worker(void *arg)
{
    zc_rpc_t *self = (zc_rpc_t *)arg;
    zsock_t *done = zsock_new_push(self->done_endpoint);
    assert(done);
    while (1) {
        pthread_mutex_lock(&self->lock);
        while (!self->stopping && zlist_size(self->jobs) == 0)
            pthread_cond_wait(&self->wake, &self->lock);
        zc_rpc_request_t *request =
            self->stopping ? NULL : (zc_rpc_request_t *)zlist_pop(self->jobs);
        pthread_mutex_unlock(&self->lock);
        if (!request) break;
        s_run_handler(request);
        zsock_send(done, "p", request);
    }
    zsock_destroy(&done);
    return NULL;
}

static void s_start_threads(zc_rpc_t *self)
{
    if (self->started_threads || self->threads == 0) return;
    self->workers = (pthread_t *)calloc((size_t)self->threads, sizeof(pthread_t));
    assert(self->workers);
    for (int i = 0; i < self->threads; i++)
        if (pthread_create(&self->workers[i], NULL, s_worker, self) == 0) self->started_threads++;
}

//  --------------------------------------------------------------------------
//  Construction

zc_rpc_t *zc_rpc_new(zc_node_t *node)
{
    zc_rpc_t *self = (zc_rpc_t *)calloc(1, sizeof(zc_rpc_t));
    assert(self);
    self->node = node;
    self->methods = zhashx_new();
    zhashx_set_destructor(self->methods, (zhashx_destructor_fn *)zstr_free);
    self->pending = zhashx_new();
    self->threads = 2;
    self->jobs = zlist_new();
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->wake, NULL);
    snprintf(self->done_endpoint, sizeof self->done_endpoint, "inproc://zc-rpc-done-%p",
             (void *)self);
    self->done = zsock_new_pull(self->done_endpoint);
    assert(self->done);
    self->started = zclock_mono();
    return self;
}

static void s_complete(zc_rpc_t *self, zc_rpc_call_t *call);

void zc_rpc_destroy(zc_rpc_t **self_p)
{
    zc_rpc_t *self = *self_p;
    if (!self) return;
    pthread_mutex_lock(&self->lock);
    self->stopping = 1;
    pthread_cond_broadcast(&self->wake);
    pthread_mutex_unlock(&self->lock);
    for (int i = 0; i < self->started_threads; i++)
        pthread_join(self->workers[i], NULL);
    free(self->workers);
    //  Requests still queued or finished but unsent are dropped with the node.
    for (zc_rpc_request_t *r = (zc_rpc_request_t *)zlist_pop(self->jobs); r;
         r = (zc_rpc_request_t *)zlist_pop(self->jobs))
        s_request_destroy(&r);
    zc_rpc_request_t *request;
    while (zsock_events(self->done) & ZMQ_POLLIN && zsock_recv(self->done, "p", &request) == 0)
        s_request_destroy(&request);
    zlist_destroy(&self->jobs);
    //  Calls still pending complete as "peer gone": this node is going.
    zc_rpc_call_t *call;
    while ((call = (zc_rpc_call_t *)zhashx_first(self->pending)) != NULL) {
        call->status = ZC_RPC_PEER_GONE;
        s_complete(self, call);
    }
    zhashx_destroy(&self->pending);
    zhashx_destroy(&self->methods);
    zsock_destroy(&self->done);
    if (self->redis) redisFree(self->redis);
    pthread_mutex_destroy(&self->lock);
    pthread_cond_destroy(&self->wake);
    free(self);
    *self_p = NULL;
}

void zc_rpc_set_threads(zc_node_t *node, int threads)
{
    zc_rpc_t *self = zc_node_rpc(node);
    if (!self->started_threads) self->threads = threads < 0 ? 0 : threads > 64 ? 64 : threads;
}

int zc_rpc_register(zc_node_t *node, const char *method, zc_rpc_method_fn *fn, void *arg)
{
    zc_rpc_t *self = zc_node_rpc(node);
    if (!zc_wire_name_valid(method) || !fn || strncmp(method, "zc.", 3) == 0) return -1;
    for (size_t i = 0; i < sizeof s_builtins / sizeof s_builtins[0]; i++)
        if (strcmp(method, s_builtins[i]) == 0) return -1;
    if (zhashx_lookup(self->methods, method)) return -1;
    s_method_t *entry = (s_method_t *)malloc(sizeof(s_method_t));
    assert(entry);
    entry->fn = fn;
    entry->arg = arg;
    zhashx_insert(self->methods, method, entry);
    return 0;
}

//  --------------------------------------------------------------------------
//  Serving requests

//  Sends a reply for corr to caller: zc.ok with the result, or zc.error with
//  [status, code, message].
static void s_send_reply(zc_rpc_t *self, const char *caller, uint64_t corr, int status, int code,
                         const char *error, const void *data, size_t size);

static void s_pack_str(msgpack_packer *pk, const char *s)
{
    size_t len = strlen(s);
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

//  Packs a JSON value as msgpack (strings, numbers, booleans, arrays, objects).
static void s_pack_json(msgpack_packer *pk, json_t *value)
{
    if (json_is_string(value))
        s_pack_str(pk, json_string_value(value));
    else if (json_is_integer(value))
        msgpack_pack_int64(pk, json_integer_value(value));
    else if (json_is_real(value))
        msgpack_pack_double(pk, json_real_value(value));
    else if (json_is_true(value))
        msgpack_pack_true(pk);
    else if (json_is_false(value))
        msgpack_pack_false(pk);
    else if (json_is_array(value)) {
        msgpack_pack_array(pk, json_array_size(value));
        size_t i;
        json_t *item;
        json_array_foreach(value, i, item) s_pack_json(pk, item);
    } else if (json_is_object(value)) {
        msgpack_pack_map(pk, json_object_size(value));
        const char *key;
        json_t *item;
        json_object_foreach(value, key, item)
        {
            s_pack_str(pk, key);
            s_pack_json(pk, item);
        }
    } else
        msgpack_pack_nil(pk);
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
    } else if (strcmp(method, "info") == 0) {
        char *text = zc_node_cluster_info(self->node);
        json_t *info = json_loads(text, 0, NULL);
        free(text);
        json_t *me = json_array_get(json_object_get(info, "nodes"), 0);
        zc_mesh_stats_t stats;
        zc_mesh_stats(zc_node_mesh(self->node), &stats);
        json_t *counters =
            json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "sent_public",
                      (json_int_t)stats.sent_public, "sent_group", (json_int_t)stats.sent_group,
                      "sent_private", (json_int_t)stats.sent_private, "recv_public",
                      (json_int_t)stats.recv_public, "recv_group", (json_int_t)stats.recv_group,
                      "recv_private", (json_int_t)stats.recv_private, "lost",
                      (json_int_t)stats.lost, "malformed", (json_int_t)stats.malformed, "requests",
                      (json_int_t)self->stats.requests_handled, "calls",
                      (json_int_t)self->stats.calls_started);
        json_t *answer =
            json_pack("{s:O, s:O, s:O, s:I, s:o}", "id", json_object_get(me, "id"), "groups",
                      json_object_get(me, "groups"), "headers", json_object_get(me, "headers"),
                      "uptime_ms", (json_int_t)(zclock_mono() - self->started), "stats", counters);
        s_pack_json(pk, answer);
        json_decref(answer);
        json_decref(info);
    } else
        msgpack_pack_nil(pk); //  ping
}

static void s_deliver_reply(zc_rpc_t *self, const char *from, uint64_t corr, int status, int code,
                            const char *error, const void *data, size_t size);

static void s_serve(zc_rpc_t *self, const char *caller, const char *method, uint64_t corr,
                    const void *args, size_t size)
{
    self->stats.requests_handled++;
    for (size_t i = 0; i < sizeof s_builtins / sizeof s_builtins[0]; i++)
        if (strcmp(method, s_builtins[i]) == 0) {
            msgpack_sbuffer sbuf;
            msgpack_sbuffer_init(&sbuf);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
            s_builtin(self, method, &pk);
            s_send_reply(self, caller, corr, ZC_RPC_OK, 0, NULL, sbuf.data, sbuf.size);
            msgpack_sbuffer_destroy(&sbuf);
            return;
        }
    s_method_t *handler = (s_method_t *)zhashx_lookup(self->methods, method);
    if (!handler) {
        s_send_reply(self, caller, corr, ZC_RPC_UNKNOWN_METHOD, 0, "unknown method", NULL, 0);
        return;
    }
    zc_rpc_request_t *request = (zc_rpc_request_t *)calloc(1, sizeof(zc_rpc_request_t));
    assert(request);
    snprintf(request->caller, sizeof request->caller, "%s", caller);
    snprintf(request->method, sizeof request->method, "%s", method);
    request->corr = corr;
    request->args = (uint8_t *)malloc(size ? size : 1);
    assert(request->args);
    if (size) memcpy(request->args, args, size);
    request->size = size;
    request->handler = *handler;
    s_start_threads(self);
    if (self->started_threads == 0) {
        s_run_handler(request); //  inline
        s_send_reply(self, request->caller, corr, request->status, request->code, request->error,
                     request->result, request->result_size);
        s_request_destroy(&request);
        return;
    }
    pthread_mutex_lock(&self->lock);
    zlist_append(self->jobs, request);
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
}

static void s_send_reply(zc_rpc_t *self, const char *caller, uint64_t corr, int status, int code,
                         const char *error, const void *data, size_t size)
{
    if (strcmp(caller, zc_node_id(self->node)) == 0) {
        s_deliver_reply(self, caller, corr, status, code, error, data, size);
        return;
    }
    zc_mesh_t *mesh = zc_node_mesh(self->node);
    if (status == ZC_RPC_OK) {
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
    msgpack_pack_int(&pk, status);
    msgpack_pack_int(&pk, code);
    s_pack_str(&pk, error ? error : "");
    if (zc_mesh_send_to(mesh, caller, ZC_KIND_REPLY, "zc.error", corr, sbuf.data, sbuf.size))
        zc_log(ZC_LOG_WARNING, zc_node_id(self->node), "cannot reply to %s: %s", caller,
               strerror(errno));
    msgpack_sbuffer_destroy(&sbuf);
}

//  --------------------------------------------------------------------------
//  Calls

static void s_key(uint64_t corr, char *key)
{
    snprintf(key, 17, "%016" PRIx64, corr);
}

static int s_status_of(zc_rpc_call_t *call)
{
    int first_failure = -1, ok = 0;
    for (size_t i = 0; i < call->reply_count; i++) {
        if (call->replies[i].pub.status == ZC_RPC_OK)
            ok++;
        else if (first_failure < 0)
            first_failure = call->replies[i].pub.status;
    }
    size_t missing = zlist_size(call->missing);
    if (call->target == ZC_RPC_ALL_FIRST)
        return ok ? ZC_RPC_OK : first_failure >= 0 ? first_failure : ZC_RPC_TIMEOUT;
    if (first_failure >= 0) return first_failure;
    if (missing || call->reply_count == 0) return ZC_RPC_TIMEOUT;
    return ZC_RPC_OK;
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
    if (call->status == ZC_RPC_OK)
        self->stats.calls_ok++;
    else if (call->status == ZC_RPC_TIMEOUT)
        self->stats.calls_timed_out++;
    else
        self->stats.calls_failed++;
    if (call->fn) call->fn(self->node, call, call->arg);
}

static void s_add_reply(zc_rpc_call_t *call, const char *from, int status, int code,
                        const char *error, const void *data, size_t size)
{
    call->replies =
        (s_reply_t *)realloc(call->replies, (call->reply_count + 1) * sizeof(s_reply_t));
    assert(call->replies);
    s_reply_t *reply = &call->replies[call->reply_count++];
    reply->node = strdup(from);
    reply->error = status == ZC_RPC_OK ? NULL : strdup(error ? error : zc_rpc_strstatus(status));
    reply->data = NULL;
    if (status == ZC_RPC_OK && size) {
        reply->data = (uint8_t *)malloc(size);
        assert(reply->data);
        memcpy(reply->data, data, size);
    }
    reply->pub = (zc_rpc_reply_t){reply->node,  status,      code,
                                  reply->error, reply->data, status == ZC_RPC_OK ? size : 0};
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

static void s_deliver_reply(zc_rpc_t *self, const char *from, uint64_t corr, int status, int code,
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
    s_maybe_complete(self, call, status == ZC_RPC_OK);
}

//  Parses a zc.error payload [status, code, message].
static void s_parse_error(const zc_msg_t *msg, int *status, int *code, char *message, size_t cap)
{
    *status = ZC_RPC_HANDLER_ERROR;
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
        if ((items[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER && items[0].via.u64 >= 1 &&
             items[0].via.u64 <= ZC_RPC_INVALID))
            *status = (int)items[0].via.u64;
        if (items[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            *code = (int)items[1].via.u64;
        else if (items[1].type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            *code = (int)items[1].via.i64;
        if (items[2].type == MSGPACK_OBJECT_STR)
            snprintf(message, cap, "%.*s", (int)items[2].via.str.size, items[2].via.str.ptr);
    }
    msgpack_unpacked_destroy(&result);
}

int zc_rpc_consume(zc_rpc_t *self, const zc_msg_t *msg)
{
    int kind = zc_msg_kind(msg);
    if (kind == ZC_KIND_REQUEST) {
        s_serve(self, zc_msg_sender(msg), zc_msg_type(msg), zc_msg_corr(msg), zc_msg_data(msg),
                zc_msg_size(msg));
        return 1;
    }
    if (kind != ZC_KIND_REPLY) return 0;
    if (strcmp(zc_msg_type(msg), "zc.ok") == 0)
        s_deliver_reply(self, zc_msg_sender(msg), zc_msg_corr(msg), ZC_RPC_OK, 0, NULL,
                        zc_msg_data(msg), zc_msg_size(msg));
    else {
        int status, code;
        char message[512];
        s_parse_error(msg, &status, &code, message, sizeof message);
        s_deliver_reply(self, zc_msg_sender(msg), zc_msg_corr(msg), status, code, message, NULL, 0);
    }
    return 1;
}

void zc_rpc_peer_removed(zc_rpc_t *self, const char *peer)
{
    zlist_t *affected = zlist_new();
    for (zc_rpc_call_t *call = (zc_rpc_call_t *)zhashx_first(self->pending); call;
         call = (zc_rpc_call_t *)zhashx_next(self->pending))
        zlist_append(affected, call);
    for (zc_rpc_call_t *call = (zc_rpc_call_t *)zlist_first(affected); call;
         call = (zc_rpc_call_t *)zlist_next(affected))
        if (s_unwait(call, peer)) {
            s_add_reply(call, peer, ZC_RPC_PEER_GONE, 0, "the node left or died", NULL, 0);
            s_maybe_complete(self, call, 0);
        }
    zlist_destroy(&affected);
}

int zc_rpc_process(zc_rpc_t *self)
{
    zc_rpc_request_t *request;
    while (zsock_events(self->done) & ZMQ_POLLIN && zsock_recv(self->done, "p", &request) == 0) {
        s_send_reply(self, request->caller, request->corr, request->status, request->code,
                     request->error, request->result, request->result_size);
        s_request_destroy(&request);
    }
    int64_t now = zclock_mono(), next = -1;
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
    return (int)next;
}

int zc_rpc_pollitem(zc_rpc_t *self, zmq_pollitem_t *item)
{
    *item = (zmq_pollitem_t){.socket = zsock_resolve(self->done), .events = ZMQ_POLLIN};
    return 1;
}

//  Looks up which node holds a connection id. Returns 0 and fills owner,
//  1 if no node holds it, -1 on a Redis error.
static int s_connection_owner(zc_rpc_t *self, const char *connection, char *owner, size_t cap);

zc_rpc_call_t *zc_rpc_start(zc_node_t *node, zc_rpc_target_t target, const char *to,
                            const char *method, const void *args, size_t size, int timeout_ms,
                            zc_rpc_done_fn *fn, void *arg)
{
    zc_rpc_t *self = zc_node_rpc(node);
    zc_rpc_call_t *call = (zc_rpc_call_t *)calloc(1, sizeof(zc_rpc_call_t));
    assert(call);
    call->rpc = self;
    call->corr = ++self->next_corr;
    call->target = target;
    call->deadline = zclock_mono() + (timeout_ms > 0 ? timeout_ms : ZC_RPC_TIMEOUT_DEFAULT);
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

    char owner[ZC_NAME_MAX + 1];
    zlist_t *targets = zlist_new();
    zlist_autofree(targets);
    int immediate = -1;
    if (!zc_wire_name_valid(method))
        immediate = ZC_RPC_INVALID;
    else if (target == ZC_RPC_NODE) {
        if (!to || !zc_wire_name_valid(to))
            immediate = ZC_RPC_INVALID;
        else
            zlist_append(targets, (void *)to);
    } else if (target == ZC_RPC_CONNECTION) {
        int rc = to ? s_connection_owner(self, to, owner, sizeof owner) : 1;
        if (rc == 0)
            zlist_append(targets, owner);
        else
            immediate = rc > 0 ? ZC_RPC_UNKNOWN_CONNECTION : ZC_RPC_NO_ROUTE;
    } else if (target == ZC_RPC_ALL_FIRST || target == ZC_RPC_ALL_GATHER) {
        zlist_append(targets, (void *)zc_node_id(node));
        zlist_t *peers = zc_node_peers(node);
        for (char *id = (char *)zlist_first(peers); id; id = (char *)zlist_next(peers))
            zlist_append(targets, id);
        zlist_destroy(&peers);
    } else
        immediate = ZC_RPC_INVALID;
    if (immediate >= 0) {
        zlist_destroy(&targets);
        call->status = immediate;
        s_complete(self, call);
        return call;
    }
    for (char *id = (char *)zlist_first(targets); id; id = (char *)zlist_next(targets))
        zlist_append(call->waiting, strdup(id));
    for (char *id = (char *)zlist_first(targets); id; id = (char *)zlist_next(targets)) {
        if (strcmp(id, zc_node_id(node)) == 0)
            s_serve(self, id, method, call->corr, args, size);
        else if (zc_mesh_send_to(zc_node_mesh(node), id, ZC_KIND_REQUEST, method, call->corr, args,
                                 size)) {
            int status = errno == EHOSTUNREACH ? ZC_RPC_NO_ROUTE : ZC_RPC_INVALID;
            char why[128];
            snprintf(why, sizeof why, "cannot send to %s: %s", id, strerror(errno));
            if (s_unwait(call, id)) s_add_reply(call, id, status, 0, why, NULL, 0);
        }
        if (call->done) break; //  a local reply completed it
    }
    zlist_destroy(&targets);
    if (!call->done) s_maybe_complete(self, call, 0);
    return call;
}

int zc_rpc_wait(zc_node_t *node, zc_rpc_call_t *call)
{
    while (!call->done) {
        long left = (long)(call->deadline - zclock_mono());
        zc_node_step(node, left > 0 ? (int)left : 0);
    }
    return call->status;
}

zc_rpc_call_t *zc_rpc_call(zc_node_t *node, zc_rpc_target_t target, const char *to,
                           const char *method, const void *args, size_t size, int timeout_ms)
{
    zc_rpc_call_t *call =
        zc_rpc_start(node, target, to, method, args, size, timeout_ms, NULL, NULL);
    zc_rpc_wait(node, call);
    return call;
}

int zc_rpc_call_done(zc_rpc_call_t *call)
{
    return call->done;
}

int zc_rpc_call_status(zc_rpc_call_t *call)
{
    return call->done ? call->status : -1;
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

const char *zc_rpc_strstatus(int status)
{
    static const char *names[] = {
        "ok",        "unknown method",   "handler error",      "timed out",
        "peer gone", "no route to node", "unknown connection", "invalid call"};
    return status >= 0 && status <= ZC_RPC_INVALID ? names[status] : "not done";
}

//  --------------------------------------------------------------------------
//  Connection ids in Redis: zc:{CLUSTER}:conn is a hash connection -> node

static redisContext *s_redis(zc_rpc_t *self)
{
    if (self->redis && self->redis->err) {
        redisFree(self->redis);
        self->redis = NULL;
    }
    if (!self->redis) {
        char err[256];
        self->redis = zc_redis_connect(zc_node_redis_url(self->node), 1000, err, sizeof err);
        if (!self->redis)
            zc_log(ZC_LOG_WARNING, zc_node_id(self->node), "RPC connection registry: %s", err);
    }
    return self->redis;
}

static void s_conn_key(zc_rpc_t *self, char *key, size_t cap)
{
    snprintf(key, cap, "zc:{%s}:conn", zc_node_cluster(self->node));
}

static int s_connection_owner(zc_rpc_t *self, const char *connection, char *owner, size_t cap)
{
    redisContext *c = s_redis(self);
    if (!c) return -1;
    char key[256];
    s_conn_key(self, key, sizeof key);
    redisReply *reply = (redisReply *)redisCommand(c, "HGET %s %s", key, connection);
    int rc = -1;
    if (reply && reply->type == REDIS_REPLY_STRING && zc_wire_name_valid(reply->str)) {
        snprintf(owner, cap, "%s", reply->str);
        rc = 0;
    } else if (reply && reply->type == REDIS_REPLY_NIL)
        rc = 1;
    if (reply) freeReplyObject(reply);
    return rc;
}

int zc_rpc_connection_add(zc_node_t *node, const char *connection)
{
    zc_rpc_t *self = zc_node_rpc(node);
    redisContext *c = s_redis(self);
    if (!c || !connection || !*connection) return -1;
    char key[256];
    s_conn_key(self, key, sizeof key);
    redisReply *reply =
        (redisReply *)redisCommand(c, "HSET %s %s %s", key, connection, zc_node_id(node));
    int rc = reply && reply->type == REDIS_REPLY_INTEGER ? 0 : -1;
    if (reply) freeReplyObject(reply);
    return rc;
}

int zc_rpc_connection_remove(zc_node_t *node, const char *connection)
{
    zc_rpc_t *self = zc_node_rpc(node);
    redisContext *c = s_redis(self);
    if (!c || !connection) return -1;
    char key[256];
    s_conn_key(self, key, sizeof key);
    //  Only the holder removes its connection: another node may have taken it over.
    redisReply *reply =
        (redisReply *)redisCommand(c, "EVAL %s 1 %s %s %s",
                                   "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then "
                                   "return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0",
                                   key, connection, zc_node_id(node));
    int rc = reply && reply->type == REDIS_REPLY_INTEGER ? 0 : -1;
    if (reply) freeReplyObject(reply);
    return rc;
}

void zc_rpc_stats(zc_node_t *node, zc_rpc_stats_t *stats)
{
    *stats = zc_node_rpc(node)->stats;
}
