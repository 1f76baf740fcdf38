/*  zc_admin — the supervisor's HTTP admin endpoint over libmicrohttpd.

    Why libmicrohttpd in "external epoll" mode: the master keeps every
    worker's state in one table touched by one thread, so the HTTP daemon
    must not run handlers on threads of its own. MHD gives us one epoll fd
    to put in the master's poll set and MHD_run to call when it is readable;
    handlers then run on the master's thread and read the table directly.

    Long operations (a rolling reload waits for each new worker's ready
    signal) answer later: the handler leaves the request unanswered, we
    suspend its connection, and zc_admin_reply resumes it. A suspended
    connection is not polled, so a client that hangs up is only noticed when
    the reply is written; the request stays valid until then, which is what
    lets the supervisor keep a plain pointer to it.

    The daemon listens on 127.0.0.1 only. What is done with a request before
    its handler (method, access key, path, parameters) is decided in
    zc_admin_request.c, which needs no connection.
*/
#include "zc_admin.h"
#include "zc_admin_request.h"

#include <assert.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT_T;
#else
typedef enum MHD_Result MHD_RESULT_T;
#endif

struct _zc_admin_t {
    struct MHD_Daemon *daemon;
    char *key;
    zc_admin_handler_fn *handler;
    void *handler_arg;
    zc_admin_request_t *pending; //  deferred requests, a list through ->next
    int port;
};

static void s_pending_remove(zc_admin_t *self, zc_admin_request_t *request)
{
    for (zc_admin_request_t **p = &self->pending; *p; p = &(*p)->next)
        if (*p == request) {
            *p = request->next;
            break;
        }
    request->next = NULL;
}

static MHD_RESULT_T s_queue(struct MHD_Connection *connection, int status, const char *body)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!response) return MHD_NO;
    MHD_add_response_header(response, "Content-Type", "application/json");
    MHD_add_response_header(response, "Cache-Control", "no-store");
    MHD_RESULT_T rc = MHD_queue_response(connection, (unsigned int)status, response);
    MHD_destroy_response(response);
    return rc;
}

static MHD_RESULT_T s_collect_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    return admin_request_add_param((zc_admin_request_t *)cls, key, value) == 0 ? MHD_YES : MHD_NO;
}

//  The key from a header or the query string, or "".
static const char *s_given_key(struct MHD_Connection *connection)
{
    return admin_given_key(
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "X-Zcluster-Key"),
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Authorization"),
        MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "key"));
}

static MHD_RESULT_T s_access(void *cls, struct MHD_Connection *connection, const char *url,
                             const char *method, const char *version, const char *upload_data,
                             size_t *upload_data_size, void **con_cls)
{
    zc_admin_t *self = (zc_admin_t *)cls;
    zc_admin_request_t *request = (zc_admin_request_t *)*con_cls;
    if (!request) {
        *con_cls = admin_request_new(self, connection);
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0; //  commands take no body; arguments are in the URL
        return MHD_YES;
    }
    if (request->state == ADMIN_REQUEST_ANSWERED)
        return s_queue(connection, request->status, request->body);
    if (request->state == ADMIN_REQUEST_WAITING)
        return MHD_YES; //  resumed spuriously; keep waiting
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, s_collect_param, request);
    if (admin_request_admit(request, method, url, self->key, s_given_key(connection)) == 0)
        self->handler(request, self->handler_arg);
    if (request->state == ADMIN_REQUEST_ANSWERED)
        return s_queue(connection, request->status, request->body);
    request->next = self->pending;
    self->pending = request;
    request->suspended = 1;
    MHD_suspend_connection(connection);
    return MHD_YES;
}

static void s_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    zc_admin_request_t *request = (zc_admin_request_t *)*con_cls;
    if (!request) return;
    s_pending_remove((zc_admin_t *)cls, request);
    admin_request_free(request);
    *con_cls = NULL;
}

zc_admin_t *zc_admin_new(int port, const char *key, zc_admin_handler_fn *fn, void *arg, char *err,
                         size_t errlen)
{
    assert(key && fn);
    if (port < 0 || port > 65535) {
        snprintf(err, errlen, "admin port %d out of range", port);
        return NULL;
    }
    zc_admin_t *self = (zc_admin_t *)calloc(1, sizeof(zc_admin_t));
    assert(self);
    self->key = strdup(key);
    self->handler = fn;
    self->handler_arg = arg;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    self->daemon = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, (uint16_t)port, NULL, NULL, s_access, self,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, s_completed,
        self, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)60, MHD_OPTION_END);
    if (!self->daemon) {
        snprintf(err, errlen, "cannot listen on 127.0.0.1:%d", port);
        free(self->key);
        free(self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : port;
    return self;
}

void zc_admin_destroy(zc_admin_t **self_p)
{
    assert(self_p);
    zc_admin_t *self = *self_p;
    if (!self) return;
    while (self->pending)
        zc_admin_reply(self->pending, 503, "{\"ok\":false,\"error\":\"the master is exiting\"}");
    zc_admin_flush(self, 500);
    MHD_stop_daemon(self->daemon);
    free(self->key);
    free(self);
    *self_p = NULL;
}

int zc_admin_port(zc_admin_t *self)
{
    assert(self);
    return self->port;
}

int zc_admin_fd(zc_admin_t *self)
{
    assert(self);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    return info ? info->epoll_fd : -1;
}

int zc_admin_timeout(zc_admin_t *self)
{
    assert(self);
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (MHD_get_timeout(self->daemon, &ms) != MHD_YES) return -1;
    return ms > 60000 ? 60000 : (int)ms;
}

void zc_admin_run(zc_admin_t *self)
{
    assert(self);
    MHD_run(self->daemon);
}

void zc_admin_flush(zc_admin_t *self, int timeout_ms)
{
    assert(self);
    for (int waited = 0; waited < timeout_ms; waited += 5) {
        MHD_run(self->daemon);
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (!info || info->num_connections == 0) break;
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
}

void zc_admin_reply(zc_admin_request_t *request, int status, const char *json)
{
    assert(request && json);
    assert(request->state == ADMIN_REQUEST_WAITING);
    request->status = status;
    request->body = strdup(json);
    request->state = ADMIN_REQUEST_ANSWERED;
    if (request->suspended) {
        s_pending_remove(request->admin, request);
        request->suspended = 0;
        MHD_resume_connection(request->connection);
    }
}
