/*  zc_admin_guard — slow clients. See zc_admin_guard.h.

    Connections are kept oldest first, so the one to evict and the next
    deadline are both found from the front of the list.
*/
#include "zc_admin_guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

void admin_guard_init(admin_guard_t *self)
{
    memset(self, 0, sizeof *self);
    self->max_incomplete = ADMIN_GUARD_MAX_INCOMPLETE;
    self->deadline_ms = ADMIN_GUARD_DEADLINE_MS;
    self->log.what = "closed for not sending a whole request in time";
    self->log.interval_ms = 10000;
}

//  Shuts conn down: the daemon reads an end of stream and closes it.
static void s_shut(admin_guard_t *self, admin_conn_t *conn, int64_t now, const char *why)
{
    conn->shut = 1;
    self->incomplete--;
    shutdown(conn->fd, SHUT_RDWR);
    char target[ADMIN_LOG_TARGET_MAX * 4 + 8], message[ADMIN_LOG_TARGET_MAX * 4 + 128];
    snprintf(message, sizeof message, "closed a connection (%s) that %s",
             conn->target ? admin_log_target(target, sizeof target, conn->target)
                          : "no request line yet",
             why);
    admin_log_limited(&self->log, now, message);
}

admin_conn_t *admin_guard_open(admin_guard_t *self, int fd, int64_t now)
{
    if (self->incomplete >= self->max_incomplete)
        for (admin_conn_t *c = self->oldest; c; c = c->next)
            if (!c->complete && !c->shut) {
                s_shut(self, c, now, "was the oldest of too many slow clients");
                break;
            }
    admin_conn_t *conn = (admin_conn_t *)calloc(1, sizeof(admin_conn_t));
    conn->fd = fd;
    conn->opened = now;
    conn->prev = self->newest;
    if (self->newest)
        self->newest->next = conn;
    else
        self->oldest = conn;
    self->newest = conn;
    self->incomplete++;
    return conn;
}

void admin_guard_complete(admin_guard_t *self, admin_conn_t *conn)
{
    if (conn->complete || conn->shut) return;
    conn->complete = 1;
    self->incomplete--;
}

void admin_guard_set_target(admin_conn_t *conn, const char *target)
{
    free(conn->target);
    conn->target = strdup(target);
}

void admin_guard_close(admin_guard_t *self, admin_conn_t *conn)
{
    if (!conn->complete && !conn->shut) self->incomplete--;
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        self->oldest = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    else
        self->newest = conn->prev;
    free(conn->target);
    free(conn);
}

void admin_guard_expire(admin_guard_t *self, int64_t now)
{
    for (admin_conn_t *c = self->oldest; c && now - c->opened >= self->deadline_ms; c = c->next)
        if (!c->complete && !c->shut) s_shut(self, c, now, "sent no whole request in time");
    admin_log_flush(&self->log, now);
}

int64_t admin_guard_due(admin_guard_t *self, int64_t now)
{
    int64_t due = admin_log_due(&self->log, now);
    for (admin_conn_t *c = self->oldest; c; c = c->next)
        if (!c->complete && !c->shut) {
            int64_t left = c->opened + self->deadline_ms - now;
            if (left < 0) left = 0;
            if (due < 0 || left < due) due = left;
            break; //  the oldest incomplete one is due first
        }
    return due;
}

void admin_guard_clear(admin_guard_t *self)
{
    while (self->oldest)
        admin_guard_close(self, self->oldest);
}
