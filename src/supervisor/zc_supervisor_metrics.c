/*  zc_supervisor_metrics — the master's GET /metrics: every worker's
    counters, as each published them to Redis (zc_metrics_publish, key
    zc:{CLUSTER}:metrics:WORKER_ID), labelled worker="ID"; their sums, the
    same series without the worker label; the depth of every queue of the
    cluster; and the master's own count of workers by state.

    Why through Redis: a worker's counters live in its own process; the
    worker already talks to Redis, and a key with a TTL that each worker
    refreshes needs no new channel, and vanishes with a dead worker.
*/
#include "zc_supervisor_internal.h"
#include "zc_identity.h"
#include "zc_metrics_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Adds one worker's published samples, labelled, and sums them in totals
//  (key: name, a 0x1f, labels).
static void s_add_worker(json_t *samples, json_t *totals, const char *worker, const char *json)
{
    json_t *published = json_loads(json, 0, NULL);
    size_t i;
    json_t *sample;
    json_array_foreach(published, i, sample)
    {
        const char *name = json_string_value(json_array_get(sample, 0));
        const char *labels = json_string_value(json_array_get(sample, 1));
        json_t *value = json_array_get(sample, 2);
        if (!name || !labels || !json_is_number(value)) continue;
        char *labelled = NULL, *key = NULL;
        if (asprintf(&labelled, "worker=\"%s\"%s%s", worker, *labels ? "," : "", labels) < 0 ||
            asprintf(&key, "%s\x1f%s", name, labels) < 0) {
            free(labelled);
            continue;
        }
        metrics_add(samples, name, labelled, json_number_value(value));
        json_t *total = json_object_get(totals, key);
        json_object_set_new(
            totals, key,
            json_real(json_number_value(value) + (total ? json_number_value(total) : 0)));
        free(labelled);
        free(key);
    }
    json_decref(published);
}

//  Adds every live worker's published samples and their totals.
static void s_add_workers(zc_supervisor_t *self, json_t *samples)
{
    zc_identity_t identity;
    char err[300];
    if (!*self->redis_url ||
        zc_identity_init(&identity, self->redis_url, self->name, "", err, sizeof err))
        return;
    zc_redis_t *redis = zc_redis_new(&identity.url, 2000);
    json_t *totals = json_object();
    int counts[3] = {0};
    for (sup_proc_t *proc = self->procs; proc; proc = proc->next) {
        counts[proc->state == SUP_READY ? 1 : proc->state == SUP_STOPPING ? 2 : 0]++;
        char suffix[16 + SUP_ID_MAX], key[ZC_PREFIX_MAX + 16 + SUP_ID_MAX];
        snprintf(suffix, sizeof suffix, "metrics:%s", proc->id);
        redisReply *reply =
            zc_redis_command(redis, "GET %s", zc_identity_key(&identity, key, sizeof key, suffix));
        if (reply && reply->type == REDIS_REPLY_STRING)
            s_add_worker(samples, totals, proc->id, reply->str);
        if (reply) freeReplyObject(reply);
    }
    const char *key;
    json_t *value;
    json_object_foreach(totals, key, value)
    {
        const char *cut = strchr(key, '\x1f');
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(cut - key), key);
        metrics_add(samples, name, cut + 1, json_number_value(value));
    }
    json_decref(totals);
    const char *states[] = {"state=\"starting\"", "state=\"ready\"", "state=\"stopping\""};
    for (int i = 0; i < 3; i++)
        metrics_add(samples, "zcluster_workers", states[i], counts[i]);
    zc_redis_destroy(&redis);
}

void sup_admin_metrics(zc_supervisor_t *self, zc_admin_request_t *request)
{
    json_t *samples = json_array();
    s_add_workers(self, samples);
    zc_queue_t *queue = *self->redis_url ? zc_queue_new(self->redis_url, self->name) : NULL;
    if (queue) metrics_add_queues(samples, queue); //  on failure: no depths, the rest stands
    zc_queue_destroy(&queue);
    char *text = metrics_render(samples);
    json_decref(samples);
    zc_admin_reply_text(request, text ? 200 : 500, METRICS_CONTENT_TYPE, text ? text : "");
    free(text);
}
