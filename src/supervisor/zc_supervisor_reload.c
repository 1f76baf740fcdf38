/*  zc_supervisor_reload — rolling reload, upgrade, and restart of one worker.

    All three replace workers one at a time, gated on readiness: start the
    replacement, wait for its ready signal (the ready timeout), and only
    then stop the old worker. If the replacement exits or times out, the old
    worker is kept, the reload is aborted and reported, and no worker after
    it is touched. An upgrade also makes the new program the group's, once
    every worker runs it.

    Why reloads wait for the old worker's exit before the next step: the
    process count never exceeds workers + 1, and each step starts from a
    settled table. The old worker is stopped only after its replacement said
    it is ready, so the number of ready workers never drops during a reload
    unless something crashes meanwhile (min_ready records the fewest seen).
*/
#include "zc_supervisor_internal.h"
#include "zc_log.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_SOURCE "supervisor"

static void s_reload_reply(zc_supervisor_t *self, int status, json_t *body)
{
    for (int i = 0; i < self->reload.waiter_count; i++)
        sup_reply_json(self->reload.waiters[i], status, json_incref(body));
    self->reload.waiter_count = 0;
    json_decref(body);
}

//  The reload's outcome as an event (kept as the last reload for /health).
static json_t *s_end_event(zc_supervisor_t *self, const char *result, const char *why)
{
    sup_reload_t *r = &self->reload;
    json_t *event = sup_event_new(self, "reload");
    json_object_set_new(event, "reason", json_string(result));
    json_object_set_new(event, "kind", json_string(r->kind));
    if (r->group) json_object_set_new(event, "group", json_string(r->group->name));
    json_object_set_new(event, "replaced", json_integer(r->replaced));
    json_object_set_new(event, "of", json_integer(r->queue_len));
    json_object_set_new(event, "ms", json_integer(zclock_mono() - r->started));
    json_object_set_new(event, "min_ready", json_integer(r->min_ready));
    json_object_set_new(event, "expected", json_integer(r->expected));
    if (why) json_object_set_new(event, "text", json_string(why));
    char *text = json_dumps(event, JSON_COMPACT);
    snprintf(self->last_reload, sizeof self->last_reload, "%s", text ? text : "null");
    free(text);
    return event;
}

static void s_reload_end(zc_supervisor_t *self, const char *result, const char *why)
{
    sup_reload_t *r = &self->reload;
    int done = strcmp(result, "done") == 0;
    json_t *event = s_end_event(self, result, why);
    json_t *body = json_pack("{s:b, s:s, s:s, s:i, s:i, s:I, s:i, s:i}", "ok", done, "result",
                             result, "kind", r->kind, "replaced", r->replaced, "of", r->queue_len,
                             "ms", (json_int_t)(zclock_mono() - r->started), "min_ready",
                             r->min_ready, "expected", r->expected);
    if (why) json_object_set_new(body, "error", json_string(why));
    sup_emit(self, event);
    s_reload_reply(self, done ? 200 : 409, body);
    r->active = 0;
    if (done) self->all_ready_reason = r->kind; //  static strings
    r->fresh = r->old = NULL;
    r->slot = NULL;
    sup_argv_free(&r->argv);
    free(r->queue);
    r->queue = NULL;
    sup_check_all_ready(self);
}

void sup_reload_abort(zc_supervisor_t *self, const char *why)
{
    sup_reload_t *r = &self->reload;
    if (!r->active) return;
    if (r->fresh) {
        //  The replacement is dropped: it never served.
        if (r->fresh->state != SUP_STOPPING) sup_stop(self, r->fresh, "aborted");
        r->fresh = NULL;
    }
    s_reload_end(self, "aborted", why);
}

//  1 if the reload has nothing to replace in this slot.
static int s_skip(sup_slot_t *slot)
{
    if (slot->state == SUP_FAILED || slot->state == SUP_REMOVED || slot->state == SUP_DONE ||
        slot->group->failed)
        return 1;
    //  Being stopped for good (`shutdown ID`): nothing to replace.
    return slot->proc && slot->proc->stop_reason && !strcmp(slot->proc->stop_reason, "shutdown");
}

void sup_reload_next(zc_supervisor_t *self)
{
    sup_reload_t *r = &self->reload;
    while (r->active && !r->fresh && !r->old) {
        if (r->next == r->queue_len) {
            if (!strcmp(r->kind, "upgrade")) {
                sup_argv_free(&r->group->argv);
                r->group->argv = r->argv;
                r->argv = NULL;
            }
            s_reload_end(self, "done", NULL);
            return;
        }
        sup_slot_t *slot = r->queue[r->next++];
        if (s_skip(slot)) continue;
        char *const *argv = r->argv ? r->argv : slot->group->argv;
        if (!strcmp(r->kind, "restart")) argv = slot->argv;
        char err[512];
        r->slot = slot;
        r->fresh = sup_spawn(self, slot, argv, r->kind, 1, err, sizeof err);
        if (!r->fresh) sup_reload_abort(self, err);
    }
}

//  The replacement is ready: it takes the slot, the old process is stopped.
void sup_reload_takeover(zc_supervisor_t *self, sup_proc_t *fresh)
{
    sup_reload_t *r = &self->reload;
    assert(r->active && r->fresh == fresh);
    sup_slot_t *slot = fresh->slot;
    sup_proc_t *old = slot->proc;
    fresh->replacement = 0;
    slot->proc = fresh;
    slot->number = fresh->number;
    slot->state = SUP_READY;
    slot->respawn_at = 0;
    if (strcmp(r->kind, "restart") != 0) {
        sup_argv_free(&slot->argv);
        slot->argv = sup_argv_copy(r->argv ? r->argv : slot->group->argv);
    }
    r->fresh = NULL;
    r->replaced++;
    if (old) {
        r->old = old;
        sup_stop(self, old, r->kind);
    } else
        sup_reload_next(self);
}

//  Queues the slots to replace (only, or every live slot of group, or of
//  every group); returns how many.
static int s_queue(zc_supervisor_t *self, sup_group_t *group, sup_slot_t *only)
{
    sup_reload_t *r = &self->reload;
    int slots = 0;
    for (int g = 0; g < self->group_count; g++)
        slots += self->groups[g]->slot_count;
    free(r->queue);
    r->queue = (sup_slot_t **)calloc((size_t)slots + 1, sizeof(sup_slot_t *));
    assert(r->queue);
    r->queue_len = 0;
    for (int g = 0; g < self->group_count; g++) {
        sup_group_t *gr = self->groups[g];
        if ((group && gr != group) || gr->failed) continue;
        for (int s = 0; s < gr->slot_count; s++) {
            sup_slot_t *slot = gr->slots[s];
            if ((!only || slot == only) && slot->state != SUP_DONE && slot->state != SUP_FAILED &&
                slot->state != SUP_REMOVED && slot->state != SUP_STOPPED)
                r->queue[r->queue_len++] = slot;
        }
    }
    return r->queue_len;
}

int sup_reload_begin(zc_supervisor_t *self, const char *kind, sup_group_t *group, sup_slot_t *only,
                     char *const argv[], zc_admin_request_t *waiter)
{
    sup_reload_t *r = &self->reload;
    if (self->stopping) return sup_fail(self, -1, ZC_ERR_STATE, "the master is shutting down");
    if (r->active) return sup_fail(self, -1, ZC_ERR_STATE, "a %s is already running", r->kind);
    r->next = r->replaced = 0;
    r->waiter_count = 0;
    if (s_queue(self, group, only) == 0)
        return sup_fail(self, -1, ZC_ERR_STATE, "no worker to %s", kind);
    r->active = 1;
    r->kind = kind;
    r->group = group;
    r->argv = argv ? sup_argv_copy(argv) : NULL;
    r->started = zclock_mono();
    r->expected = sup_expected_count(self);
    r->min_ready = sup_ready_count(self);
    r->slot = NULL;
    r->fresh = r->old = NULL;
    if (waiter) r->waiters[r->waiter_count++] = waiter;
    json_t *event = sup_event_new(self, "reload");
    json_object_set_new(event, "reason", json_string("started"));
    json_object_set_new(event, "kind", json_string(kind));
    if (group) json_object_set_new(event, "group", json_string(group->name));
    if (only && only->proc) json_object_set_new(event, "worker", json_string(only->proc->id));
    json_object_set_new(event, "of", json_integer(r->queue_len));
    sup_emit(self, event);
    sup_ok(self);
    sup_reload_next(self);
    return 0;
}

int zc_supervisor_reload(zc_supervisor_t *self)
{
    assert(self);
    if (sup_reload_begin(self, "reload", NULL, NULL, NULL, NULL)) {
        zc_log(ZC_LOG_WARNING, LOG_SOURCE, "reload refused: %s", self->failure.text);
        return -1;
    }
    return 0;
}

int zc_supervisor_upgrade(zc_supervisor_t *self, const char *group, char *const argv[])
{
    assert(self);
    sup_group_t *g = group                    ? sup_find_group(self, group)
                     : self->group_count == 1 ? self->groups[0]
                                              : NULL;
    if (!argv || !argv[0] || !*argv[0])
        sup_fail(self, -1, ZC_ERR_INVALID, "no program");
    else if (!g && group)
        sup_fail(self, -1, ZC_ERR_MISSING, "no such group %.100s", group);
    else if (!g)
        sup_fail(self, -1, ZC_ERR_INVALID, "several groups: say which");
    else if (sup_reload_begin(self, "upgrade", g, NULL, argv, NULL) == 0)
        return 0;
    zc_log(ZC_LOG_WARNING, LOG_SOURCE, "upgrade refused: %s", self->failure.text);
    return -1;
}
