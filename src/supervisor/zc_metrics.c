/*  zc_metrics — a process's counters in the Prometheus text format.

    Why snapshots: the counters belong to objects that are not thread-safe
    (a node and its mesh belong to one thread). The owner's thread takes a
    snapshot (zc_metrics_update) and the HTTP thread only ever reads the
    last one, under a lock. Publishing to Redis is a thread of its own too:
    the owner's thread is a node's data path, which no Redis round trip
    may stall (see docs/ARCHITECTURE.md, Threads).

    Why samples as data: a snapshot is a list of samples [name, labels,
    value] (a JSON array), rendered to text at the end. The same list is
    what a supervised worker publishes to Redis, so the master can label
    each worker's samples, add them up into totals, and render the lot with
    the same code (metrics_render, zc_metrics_internal.h). Every family and
    its type and help is in one table, s_families.
*/
#include "zc_metrics.h"
#include "zc_failure.h"
#include "zc_identity.h"
#include "zc_log.h"
#include "zc_metrics_internal.h"

#include <arpa/inet.h>
#include <assert.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT_T;
#else
typedef enum MHD_Result MHD_RESULT_T;
#endif

#define S_PUBLISH_TTL_MS 10000

typedef struct {
    const char *name, *type, *help;
} s_family_t;

static const s_family_t s_families[] = {
    {"zcluster_messages_sent_total", "counter", "Messages sent, by kind"},
    {"zcluster_messages_received_total", "counter", "Messages received, by kind"},
    {"zcluster_message_bytes_total", "counter", "Payload bytes, by direction"},
    {"zcluster_messages_dropped_total", "counter", "Messages dropped or lost, by reason"},
    {"zcluster_peer_connections_lost_total", "counter", "Peer connections that dropped"},
    {"zcluster_handshakes_refused_total", "counter",
     "Connections refused by the ZAP handler (wrong or no cluster credentials)"},
    {"zcluster_peers", "gauge", "Live peers"},
    {"zcluster_leader", "gauge", "1 if this node is the leader"},
    {"zcluster_registry_events_total", "counter", "Membership events, by event"},
    {"zcluster_rpc_calls_total", "counter", "RPC calls completed, by outcome"},
    {"zcluster_rpc_requests_handled_total", "counter", "RPC requests this node answered"},
    {"zcluster_rpc_call_duration_seconds", "histogram", "RPC call latency"},
    {"zcluster_jobs_total", "counter", "Job runs of this worker, by outcome"},
    {"zcluster_jobs_running", "gauge", "Jobs this worker holds now"},
    {"zcluster_job_run_duration_seconds", "histogram", "Job handler run time"},
    {"zcluster_queue_jobs", "gauge", "Jobs of a queue, by state"},
    {"zcluster_queue_processed_total", "counter", "Jobs of a queue that succeeded"},
    {"zcluster_queue_failed_total", "counter", "Jobs of a queue moved to the failed list"},
    {"zcluster_cache_ops_total", "counter", "Cache operations, by result"},
    {"zcluster_workers", "gauge", "Supervised workers, by state"},
};

struct _zc_metrics_t {
    zc_node_t *node;
    zc_rpc_t *rpc;
    zc_queue_worker_t *worker;
    zc_queue_t *queue;
    zc_cache_t *cache;
    pthread_mutex_t lock; //  guards text, pending and closing
    char *text;           //  the last snapshot, rendered
    struct MHD_Daemon *http;
    //  Publishing: a thread of its own SETs the latest snapshot, so that a
    //  slow or unreachable Redis never stalls the owner's thread.
    zc_redis_t *redis; //  used by the publisher thread only; NULL if not publishing
    char key[ZC_PREFIX_MAX + 16 + ZC_NAME_MAX];
    pthread_t publisher;
    pthread_cond_t wake;
    char *pending; //  the snapshot to publish next (JSON), or NULL
    int closing;
    zc_failure_t failure;
};

//  --------------------------------------------------------------------------
//  Samples

void metrics_add(json_t *samples, const char *name, const char *labels, double value)
{
    json_array_append_new(samples, json_pack("[s, s, f]", name, labels ? labels : "", value));
}

//  Adds a histogram's _bucket (cumulative), _sum and _count samples.
static void s_add_histogram(json_t *samples, const char *family, const zc_histogram_t *h)
{
    char name[128], labels[64];
    uint64_t cumulative = 0;
    snprintf(name, sizeof name, "%s_bucket", family);
    for (int i = 0; i < ZC_HISTOGRAM_BUCKETS; i++) {
        cumulative += h->buckets[i];
        snprintf(labels, sizeof labels, "le=\"%g\"", zc_histogram_bound(i));
        metrics_add(samples, name, labels, (double)cumulative);
    }
    metrics_add(samples, name, "le=\"+Inf\"", (double)h->count);
    snprintf(name, sizeof name, "%s_sum", family);
    metrics_add(samples, name, NULL, h->sum);
    snprintf(name, sizeof name, "%s_count", family);
    metrics_add(samples, name, NULL, (double)h->count);
}

static void s_add_node(json_t *samples, zc_node_t *node)
{
    zc_mesh_stats_t m;
    zc_mesh_stats(zc_node_mesh(node), &m);
    const char *kinds[] = {"public", "group", "private", "request", "reply"};
    uint64_t sent[] = {m.sent_public, m.sent_group, m.sent_private, m.sent_request, m.sent_reply};
    uint64_t recv[] = {m.recv_public, m.recv_group, m.recv_private, m.recv_request, m.recv_reply};
    char labels[64];
    for (int i = 0; i < 5; i++) {
        snprintf(labels, sizeof labels, "kind=\"%s\"", kinds[i]);
        metrics_add(samples, "zcluster_messages_sent_total", labels, (double)sent[i]);
        metrics_add(samples, "zcluster_messages_received_total", labels, (double)recv[i]);
    }
    metrics_add(samples, "zcluster_message_bytes_total", "direction=\"sent\"",
                (double)m.bytes_sent);
    metrics_add(samples, "zcluster_message_bytes_total", "direction=\"received\"",
                (double)m.bytes_received);
    const char *reasons[] = {"lost",      "malformed",    "bad_version",
                             "oversized", "send_dropped", "no_route"};
    uint64_t drops[] = {m.lost,      m.malformed,    m.bad_version,
                        m.oversized, m.send_dropped, m.no_route};
    for (int i = 0; i < 6; i++) {
        snprintf(labels, sizeof labels, "reason=\"%s\"", reasons[i]);
        metrics_add(samples, "zcluster_messages_dropped_total", labels, (double)drops[i]);
    }
    metrics_add(samples, "zcluster_peer_connections_lost_total", NULL, (double)m.peers_lost);
    metrics_add(samples, "zcluster_handshakes_refused_total", NULL, (double)m.refused);
    metrics_add(samples, "zcluster_peers", NULL, (double)zc_node_peer_count(node));
    metrics_add(samples, "zcluster_leader", NULL, zc_node_leader(node));
    zc_node_stats_t n;
    zc_node_stats(node, &n);
    const char *events[] = {"added", "left", "expired", "crashed"};
    uint64_t counts[] = {n.peers_added, n.removed_left, n.removed_expired, n.removed_crashed};
    for (int i = 0; i < 4; i++) {
        snprintf(labels, sizeof labels, "event=\"%s\"", events[i]);
        metrics_add(samples, "zcluster_registry_events_total", labels, (double)counts[i]);
    }
}

static void s_add_rpc(json_t *samples, zc_rpc_t *rpc)
{
    zc_rpc_stats_t s;
    zc_rpc_stats(rpc, &s);
    metrics_add(samples, "zcluster_rpc_calls_total", "outcome=\"ok\"", (double)s.calls_ok);
    metrics_add(samples, "zcluster_rpc_calls_total", "outcome=\"failed\"", (double)s.calls_failed);
    metrics_add(samples, "zcluster_rpc_calls_total", "outcome=\"timeout\"",
                (double)s.calls_timed_out);
    metrics_add(samples, "zcluster_rpc_requests_handled_total", NULL, (double)s.requests_handled);
    s_add_histogram(samples, "zcluster_rpc_call_duration_seconds", &s.latency);
}

static void s_add_worker(json_t *samples, zc_queue_worker_t *worker)
{
    zc_queue_worker_stats_t s;
    zc_queue_worker_stats(worker, &s);
    const char *outcomes[] = {"succeeded", "failed", "timed_out", "lost", "released"};
    uint64_t counts[] = {s.succeeded, s.failed, s.timed_out, s.lost, s.released};
    char labels[64];
    for (int i = 0; i < 5; i++) {
        snprintf(labels, sizeof labels, "outcome=\"%s\"", outcomes[i]);
        metrics_add(samples, "zcluster_jobs_total", labels, (double)counts[i]);
    }
    metrics_add(samples, "zcluster_jobs_running", NULL, (double)s.running);
    s_add_histogram(samples, "zcluster_job_run_duration_seconds", &s.run_time);
}

int metrics_add_queues(json_t *samples, zc_queue_t *queue)
{
    char **names = NULL;
    size_t count = 0;
    if (zc_queue_names(queue, &names, &count)) return -1;
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        zc_queue_stats_t s;
        rc = zc_queue_stats(queue, names[i], &s);
        if (rc) break;
        const char *states[] = {"queued", "delayed", "inflight", "failed"};
        int64_t values[] = {s.queued, s.delayed, s.inflight, s.failed_list};
        char labels[200];
        for (int j = 0; j < 4; j++) {
            snprintf(labels, sizeof labels, "queue=\"%s\",state=\"%s\"", names[i], states[j]);
            metrics_add(samples, "zcluster_queue_jobs", labels, (double)values[j]);
        }
        snprintf(labels, sizeof labels, "queue=\"%s\"", names[i]);
        metrics_add(samples, "zcluster_queue_processed_total", labels, (double)s.processed);
        metrics_add(samples, "zcluster_queue_failed_total", labels, (double)s.failed);
    }
    zc_queue_names_free(&names);
    return rc;
}

static void s_add_cache(json_t *samples, zc_cache_t *cache)
{
    zc_cache_stats_t s;
    zc_cache_stats(cache, &s);
    metrics_add(samples, "zcluster_cache_ops_total", "result=\"ok\"", (double)(s.ops - s.failed));
    metrics_add(samples, "zcluster_cache_ops_total", "result=\"error\"", (double)s.failed);
}

//  --------------------------------------------------------------------------
//  Rendering

//  Returns 1 if sample name belongs to family (itself, or a histogram's
//  _bucket, _sum and _count).
static int s_of_family(const char *name, const char *family, int histogram)
{
    size_t len = strlen(family);
    if (strncmp(name, family, len) != 0) return 0;
    if (name[len] == 0) return !histogram;
    return histogram && (strcmp(name + len, "_bucket") == 0 || strcmp(name + len, "_sum") == 0 ||
                         strcmp(name + len, "_count") == 0);
}

char *metrics_render(const json_t *samples)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) return NULL;
    for (size_t f = 0; f < sizeof s_families / sizeof s_families[0]; f++) {
        const s_family_t *family = &s_families[f];
        int histogram = strcmp(family->type, "histogram") == 0, any = 0;
        size_t i;
        json_t *sample;
        json_array_foreach(samples, i, sample)
        {
            const char *name = json_string_value(json_array_get(sample, 0));
            const char *labels = json_string_value(json_array_get(sample, 1));
            if (!name || !labels || !s_of_family(name, family->name, histogram)) continue;
            if (!any++)
                fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", family->name, family->help,
                        family->name, family->type);
            double value = json_number_value(json_array_get(sample, 2));
            if (*labels)
                fprintf(out, "%s{%s} %.17g\n", name, labels, value);
            else
                fprintf(out, "%s %.17g\n", name, value);
        }
    }
    fclose(out);
    return text;
}

//  --------------------------------------------------------------------------
//  The object

zc_metrics_t *zc_metrics_new(void)
{
    zc_metrics_t *self = (zc_metrics_t *)calloc(1, sizeof(zc_metrics_t));
    assert(self);
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->wake, NULL);
    self->text = strdup("");
    return self;
}

void zc_metrics_destroy(zc_metrics_t **self_p)
{
    assert(self_p);
    zc_metrics_t *self = *self_p;
    if (!self) return;
    if (self->http) MHD_stop_daemon(self->http);
    if (self->redis) {
        pthread_mutex_lock(&self->lock);
        self->closing = 1;
        pthread_cond_signal(&self->wake);
        pthread_mutex_unlock(&self->lock);
        pthread_join(self->publisher, NULL);
        zc_redis_destroy(&self->redis);
    }
    free(self->pending);
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->lock);
    free(self->text);
    free(self);
    *self_p = NULL;
}

zc_error_t zc_metrics_error(zc_metrics_t *self)
{
    assert(self);
    return self->failure.kind;
}

const char *zc_metrics_errstr(zc_metrics_t *self)
{
    assert(self);
    return self->failure.text;
}

void zc_metrics_set_node(zc_metrics_t *self, zc_node_t *node)
{
    self->node = node;
}

void zc_metrics_set_rpc(zc_metrics_t *self, zc_rpc_t *rpc)
{
    self->rpc = rpc;
}

void zc_metrics_set_worker(zc_metrics_t *self, zc_queue_worker_t *worker)
{
    self->worker = worker;
}

void zc_metrics_set_queue(zc_metrics_t *self, zc_queue_t *queue)
{
    self->queue = queue;
}

void zc_metrics_set_cache(zc_metrics_t *self, zc_cache_t *cache)
{
    self->cache = cache;
}

//  The publisher thread: SETs each snapshot handed over, the latest only
//  (an older one not yet sent is replaced). Says when publishing starts
//  failing and when it works again, not on every failure.
static void *s_publisher(void *arg)
{
    zc_metrics_t *self = (zc_metrics_t *)arg;
    int failing = 0;
    pthread_mutex_lock(&self->lock);
    while (!self->closing) {
        if (!self->pending) {
            pthread_cond_wait(&self->wake, &self->lock);
            continue;
        }
        char *json = self->pending;
        self->pending = NULL;
        pthread_mutex_unlock(&self->lock);
        redisReply *reply =
            zc_redis_command(self->redis, "SET %s %s PX %d", self->key, json, S_PUBLISH_TTL_MS);
        free(json);
        int ok = reply && reply->type == REDIS_REPLY_STATUS;
        if (!ok && !failing)
            zc_log(ZC_LOG_WARNING, "metrics", "cannot publish the metrics: %s",
                   reply && reply->type == REDIS_REPLY_ERROR ? reply->str
                                                             : zc_redis_errstr(self->redis));
        else if (ok && failing)
            zc_log(ZC_LOG_INFO, "metrics", "publishing the metrics works again");
        failing = !ok;
        if (reply) freeReplyObject(reply);
        pthread_mutex_lock(&self->lock);
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

//  Hands the samples to the publisher thread.
static void s_publish(zc_metrics_t *self, const json_t *samples)
{
    char *json = json_dumps(samples, JSON_COMPACT);
    pthread_mutex_lock(&self->lock);
    free(self->pending);
    self->pending = json;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
}

int zc_metrics_update(zc_metrics_t *self)
{
    assert(self);
    zc_failure_clear(&self->failure);
    json_t *samples = json_array();
    if (self->node) s_add_node(samples, self->node);
    if (self->rpc) s_add_rpc(samples, self->rpc);
    if (self->worker) s_add_worker(samples, self->worker);
    if (self->cache) s_add_cache(samples, self->cache);
    int rc = 0;
    if (self->queue && metrics_add_queues(samples, self->queue))
        rc = zc_failure_set(&self->failure, zc_queue_error(self->queue), "queue depths: %s",
                            zc_queue_errstr(self->queue));
    if (self->redis) s_publish(self, samples);
    char *text = metrics_render(samples);
    json_decref(samples);
    if (text) {
        pthread_mutex_lock(&self->lock);
        free(self->text);
        self->text = text;
        pthread_mutex_unlock(&self->lock);
    }
    return rc;
}

char *zc_metrics_text(zc_metrics_t *self)
{
    assert(self);
    pthread_mutex_lock(&self->lock);
    char *text = strdup(self->text);
    pthread_mutex_unlock(&self->lock);
    return text;
}

//  --------------------------------------------------------------------------
//  Serving and publishing

static MHD_RESULT_T s_access(void *cls, struct MHD_Connection *connection, const char *url,
                             const char *method, const char *version, const char *upload_data,
                             size_t *upload_data_size, void **con_cls)
{
    zc_metrics_t *self = (zc_metrics_t *)cls;
    int ok = strcmp(method, "GET") == 0 && strcmp(url, "/metrics") == 0;
    char *text = ok ? zc_metrics_text(self) : strdup("GET /metrics\n");
    struct MHD_Response *response =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(response, "Content-Type", METRICS_CONTENT_TYPE);
    MHD_RESULT_T rc = MHD_queue_response(connection, ok ? 200 : 404, response);
    MHD_destroy_response(response);
    return rc;
}

int zc_metrics_serve(zc_metrics_t *self, const char *address, int port)
{
    assert(self && !self->http);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (port < 0 || port > 65535 ||
        inet_pton(AF_INET, address ? address : "127.0.0.1", &addr.sin_addr) != 1)
        return zc_failure_set(&self->failure, ZC_ERR_INVALID, "bad metrics address or port");
    self->http = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL,
                                  s_access, self, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
    if (!self->http)
        return zc_failure_set(&self->failure, ZC_ERR_SYSTEM, "cannot serve metrics on port %d",
                              port);
    return zc_failure_clear(&self->failure);
}

int zc_metrics_port(zc_metrics_t *self)
{
    assert(self);
    if (!self->http) return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->http, MHD_DAEMON_INFO_BIND_PORT);
    return info ? (int)info->port : -1;
}

int zc_metrics_publish(zc_metrics_t *self, const char *redis_url, const char *cluster,
                       const char *node_id)
{
    assert(self);
    zc_identity_t identity;
    char err[300];
    if (zc_identity_init(&identity, redis_url, cluster, node_id, err, sizeof err))
        return zc_failure_set(&self->failure, ZC_ERR_INVALID, "metrics: %s", err);
    if (!*identity.node_id)
        return zc_failure_set(&self->failure, ZC_ERR_INVALID, "metrics: no node id");
    char suffix[16 + ZC_NAME_MAX];
    snprintf(suffix, sizeof suffix, "metrics:%s", identity.node_id);
    if (self->redis)
        return zc_failure_set(&self->failure, ZC_ERR_STATE, "metrics: published already");
    zc_identity_key(&identity, self->key, sizeof self->key, suffix);
    self->redis = zc_redis_new(&identity.url, 2000);
    if (pthread_create(&self->publisher, NULL, s_publisher, self)) {
        zc_redis_destroy(&self->redis);
        return zc_failure_set(&self->failure, ZC_ERR_SYSTEM, "metrics: no publisher thread");
    }
    return zc_failure_clear(&self->failure);
}
