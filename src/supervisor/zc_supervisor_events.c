/*  zc_supervisor_events — what the master tells the world about its workers.

    Every event is a JSON object built once and sent four ways: a log line
    for the operator, a ring of the last SUP_EVENT_RING events for the admin
    API (`GET /events?since=SEQ`, so a client can follow without missing
    any), the application's callback, and the cluster's Redis: PUBLISH on
    zc:{NAME}:supervisor for live listeners, LPUSH + LTRIM on
    zc:{NAME}:supervisor:events for late readers.

    Redis must never stall the master's loop: the connection has a short
    timeout, and after a failure the master stops trying for a second;
    events not published meanwhile are counted (health shows the count).
*/
#include "zc_supervisor_internal.h"
#include "zc_log.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_SOURCE  "supervisor"
#define REDIS_WAIT  300  //  ms: connect and command timeout
#define REDIS_RETRY 1000 //  ms between connection attempts after a failure
#define REDIS_KEEP  1000 //  events kept in the Redis list

json_t *sup_event_new(zc_supervisor_t *self, const char *event)
{
    return json_pack("{s:I, s:I, s:s, s:s}", "seq", (json_int_t)++self->event_seq, "time",
                     (json_int_t)zclock_time(), "event", event, "cluster", self->name);
}

void sup_event_reason(zc_supervisor_t *self, const char *event, const char *reason)
{
    json_t *e = sup_event_new(self, event);
    json_object_set_new(e, "reason", json_string(reason));
    sup_emit(self, e);
}

void sup_event_worker(json_t *event, sup_proc_t *proc)
{
    json_object_set_new(event, "worker", json_string(proc->id));
    json_object_set_new(event, "group", json_string(proc->slot->group->name));
    json_object_set_new(event, "pid", json_integer(proc->pid));
}

static const char *s_str(json_t *event, const char *key)
{
    return json_string_value(json_object_get(event, key));
}

static long long s_int(json_t *event, const char *key, long long otherwise)
{
    json_t *value = json_object_get(event, key);
    return json_is_integer(value) ? (long long)json_integer_value(value) : otherwise;
}

static void s_log(zc_supervisor_t *self, json_t *e)
{
    const char *type = s_str(e, "event"), *worker = s_str(e, "worker");
    const char *reason = s_str(e, "reason"), *text = s_str(e, "text");
    if (!reason) reason = "";
    if (strcmp(type, "start") == 0)
        zc_log(ZC_LOG_INFO, LOG_SOURCE, "%s started: pid %lld (%s)", worker, s_int(e, "pid", 0),
               reason);
    else if (strcmp(type, "ready") == 0)
        zc_log(ZC_LOG_INFO, LOG_SOURCE, "%s ready after %lld ms", worker, s_int(e, "after_ms", 0));
    else if (strcmp(type, "exit") == 0) {
        int crash = strcmp(reason, "crash") == 0;
        char how[64];
        if (s_int(e, "signal", 0))
            snprintf(how, sizeof how, "killed by signal %lld", s_int(e, "signal", 0));
        else
            snprintf(how, sizeof how, "exited with code %lld", s_int(e, "code", 0));
        zc_log(crash ? ZC_LOG_WARNING : ZC_LOG_INFO, LOG_SOURCE, "%s (pid %lld) %s (%s)%s%s",
               worker, s_int(e, "pid", 0), how, reason, text ? ": " : "", text ? text : "");
    } else if (strcmp(type, "status") == 0)
        zc_log(ZC_LOG_DEBUG, LOG_SOURCE, "%s status: %s", worker, text ? text : "");
    else if (strcmp(type, "reload") == 0) {
        const char *kind = s_str(e, "kind");
        if (strcmp(reason, "started") == 0)
            zc_log(ZC_LOG_INFO, LOG_SOURCE, "%s started: %lld worker(s), one at a time", kind,
                   s_int(e, "of", 0));
        else
            zc_log(strcmp(reason, "done") == 0 ? ZC_LOG_INFO : ZC_LOG_WARNING, LOG_SOURCE,
                   "%s %s: %lld of %lld replaced in %lld ms, never fewer than %lld of %lld "
                   "ready%s%s",
                   kind, reason, s_int(e, "replaced", 0), s_int(e, "of", 0), s_int(e, "ms", 0),
                   s_int(e, "min_ready", 0), s_int(e, "expected", 0), text ? "; " : "",
                   text ? text : "");
    } else if (strcmp(type, "group") == 0)
        zc_log(ZC_LOG_ERROR, LOG_SOURCE, "group %s stopped: %s", s_str(e, "group"),
               text ? text : reason);
    else if (strcmp(type, "redis") == 0)
        zc_log(strcmp(reason, "started") == 0 || self->stopping ? ZC_LOG_INFO : ZC_LOG_WARNING,
               LOG_SOURCE, "embedded %s %s%s%s",
               json_object_get(e, "server") ? s_str(e, "server")
               : self->ha                   ? "Redis (master, replicas, sentinels)"
                                            : "redis-server",
               reason, text ? ": " : "", text ? text : "");
    else if (strcmp(type, "master") == 0)
        zc_log(ZC_LOG_INFO, LOG_SOURCE, "master %s (cluster %s, pid %d)", reason, self->name,
               (int)getpid());
}

int sup_events_open(zc_supervisor_t *self)
{
    char err[256];
    //  The cluster is the supervisor's name; no node acts for the master.
    if (zc_identity_init(&self->identity, self->redis_url, self->name, "", err, sizeof err))
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_INVALID, "%s", err);
    self->redis = zc_redis_new(&self->identity.url, REDIS_WAIT);
    zc_redis_set_backoff(self->redis, REDIS_RETRY, REDIS_RETRY);
    return 0;
}

//  PUBLISH for live listeners, LPUSH + LTRIM for late readers, in one
//  round trip; an event that does not make it is counted.
static void s_publish(zc_supervisor_t *self, const char *text)
{
    if (!self->redis) {
        self->events_unpublished++;
        return;
    }
    char channel[ZC_PREFIX_MAX + 32], list[ZC_PREFIX_MAX + 32];
    zc_identity_key(&self->identity, channel, sizeof channel, "supervisor");
    zc_identity_key(&self->identity, list, sizeof list, "supervisor:events");
    zc_redis_args_t *publish = &self->publish[0], *push = &self->publish[1],
                    *trim = &self->publish[2];
    zc_redis_args_reset(publish);
    zc_redis_args_str(publish, "PUBLISH");
    zc_redis_args_str(publish, channel);
    zc_redis_args_str(publish, text);
    zc_redis_args_reset(push);
    zc_redis_args_str(push, "LPUSH");
    zc_redis_args_str(push, list);
    zc_redis_args_str(push, text);
    zc_redis_args_reset(trim);
    zc_redis_args_str(trim, "LTRIM");
    zc_redis_args_str(trim, list);
    zc_redis_args_int(trim, 0);
    zc_redis_args_int(trim, REDIS_KEEP - 1);
    zc_redis_args_t *args[3] = {publish, push, trim};
    redisReply *replies[3];
    int ok = zc_redis_pipeline(self->redis, args, 3, replies) == 0;
    for (int i = 0; i < 3; i++) {
        ok &= replies[i] && replies[i]->type != REDIS_REPLY_ERROR;
        if (replies[i]) freeReplyObject(replies[i]);
    }
    if (!ok) self->events_unpublished++;
}

void sup_emit(zc_supervisor_t *self, json_t *event)
{
    char *text = json_dumps(event, JSON_COMPACT);
    if (!text) {
        json_decref(event);
        return;
    }
    s_log(self, event);
    int64_t seq = s_int(event, "seq", 0);
    int at = (int)(seq % SUP_EVENT_RING);
    free(self->ring[at]);
    self->ring[at] = strdup(text);
    self->ring_seq[at] = seq;
    s_publish(self, text);
    if (self->event_fn) {
        //  Callbacks run later, from the loop, when the table is consistent.
        if (!self->callbacks) self->callbacks = zlist_new();
        zlist_append(self->callbacks, strdup(text));
    }
    free(text);
    json_decref(event);
}

void sup_events_dispatch(zc_supervisor_t *self)
{
    char *text;
    while (self->callbacks && (text = (char *)zlist_pop(self->callbacks)) != NULL) {
        json_t *event = json_loads(text, 0, NULL);
        if (!event || !self->event_fn) {
            json_decref(event);
            free(text);
            continue;
        }
        int64_t seq = s_int(event, "seq", 0);
        zc_supervisor_event_t e = {
            .seq = seq,
            .time_ms = s_int(event, "time", 0),
            .event = s_str(event, "event"),
            .worker = s_str(event, "worker"),
            .group = s_str(event, "group"),
            .pid = (int)s_int(event, "pid", 0),
            .reason = s_str(event, "reason"),
            .exit_code = (int)s_int(event, "code", 0),
            .signal = (int)s_int(event, "signal", 0),
            .text = s_str(event, "text"),
            .json = text,
        };
        self->event_fn(self, &e, self->event_arg);
        json_decref(event);
        free(text);
    }
}

void sup_events_close(zc_supervisor_t *self)
{
    char *text;
    while (self->callbacks && (text = (char *)zlist_pop(self->callbacks)) != NULL)
        free(text);
    zlist_destroy(&self->callbacks);
    zc_redis_destroy(&self->redis);
    for (int i = 0; i < 3; i++)
        zc_redis_args_free(&self->publish[i]);
    for (int i = 0; i < SUP_EVENT_RING; i++) {
        free(self->ring[i]);
        self->ring[i] = NULL;
    }
}
