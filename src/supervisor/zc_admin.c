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

    The daemon listens on 127.0.0.1 unless told otherwise, and speaks HTTPS
    when given a certificate (MHD's GnuTLS support). Each connection is
    tracked from accept to close by zc_admin_guard.c, which shuts down slow
    clients; every answer closes its connection, so a request is the whole
    life of a connection. What is done with a request before its handler
    (method, access key, path, parameters) is decided in
    zc_admin_request.c, which needs no connection.
*/
#include "zc_admin.h"
#include "zc_admin_guard.h"
#include "zc_admin_request.h"
#include "zc_log.h"

#include <arpa/inet.h>
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
    int tls;
    char *tls_cert, *tls_key; //  PEM texts, kept while the daemon runs
    char host[64];            //  where a local client connects
    admin_guard_t guard;      //  slow clients
    admin_log_limit_t denied; //  refusals in the log
};

//  Frees a secret, overwriting it first.
static void s_wipe_free(char *secret)
{
    if (secret) explicit_bzero(secret, strlen(secret));
    free(secret);
}

//  Milliseconds on the monotonic clock: deadlines and log intervals.
static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  The guard's record of a connection, or NULL.
static admin_conn_t *s_conn(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? (admin_conn_t *)info->socket_context : NULL;
}

//  Connection start and end: the guard's bookkeeping.
static void s_notify(void *cls, struct MHD_Connection *connection, void **socket_context,
                     enum MHD_ConnectionNotificationCode code)
{
    zc_admin_t *self = (zc_admin_t *)cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = admin_guard_open(&self->guard, info ? info->connect_fd : -1, s_now_ms());
    } else if (*socket_context) {
        admin_guard_close(&self->guard, (admin_conn_t *)*socket_context);
        *socket_context = NULL;
    }
}

//  The request line's target as sent, before MHD percent-decodes it: what
//  a refusal logs. Returns no request context (s_access makes it).
static void *s_raw_target(void *cls, const char *uri, struct MHD_Connection *connection)
{
    admin_conn_t *conn = s_conn(connection);
    if (conn) admin_guard_set_target(conn, uri);
    return NULL;
}

//  Logs a refused request, rate-limited, its bytes escaped.
static void s_log_refusal(zc_admin_t *self, struct MHD_Connection *connection, const char *method,
                          int status)
{
    admin_conn_t *conn = s_conn(connection);
    char shown_method[64], target[ADMIN_LOG_TARGET_MAX * 4 + 8], message[1024];
    snprintf(message, sizeof message, "%s %s refused (%d): %s",
             admin_log_escape(shown_method, sizeof shown_method, method),
             admin_log_target(target, sizeof target, conn && conn->target ? conn->target : "?"),
             status, status == 401 ? "wrong or missing access key" : "method not allowed");
    admin_log_limited(&self->denied, s_now_ms(), message);
}

static void s_pending_remove(zc_admin_t *self, zc_admin_request_t *request)
{
    for (zc_admin_request_t **p = &self->pending; *p; p = &(*p)->next)
        if (*p == request) {
            *p = request->next;
            break;
        }
    request->next = NULL;
}

static MHD_RESULT_T s_queue(struct MHD_Connection *connection, int status, const char *body,
                            const char *content_type)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!response) return MHD_NO;
    MHD_add_response_header(response, "Content-Type",
                            content_type ? content_type : "application/json");
    MHD_add_response_header(response, "Cache-Control", "no-store");
    MHD_add_response_header(response, "Connection", "close");
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

//  MHD's handler, called once the headers are in, per piece of body, and
//  again after a resume: admits the request (the guard's rules end here),
//  runs the command, queues the answer or suspends until zc_admin_reply.
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
        return s_queue(connection, request->status, request->body, request->content_type);
    if (request->state == ADMIN_REQUEST_WAITING)
        return MHD_YES; //  resumed spuriously; keep waiting
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, s_collect_param, request);
    admin_conn_t *conn = s_conn(connection);
    if (conn) admin_guard_complete(&self->guard, conn);
    if (admin_request_admit(request, method, url, self->key, s_given_key(connection)) == 0)
        self->handler(request, self->handler_arg);
    else if (request->status == 401 || request->status == 405)
        s_log_refusal(self, connection, method, request->status);
    if (request->state == ADMIN_REQUEST_ANSWERED)
        return s_queue(connection, request->status, request->body, request->content_type);
    request->next = self->pending;
    self->pending = request;
    request->suspended = 1;
    MHD_suspend_connection(connection);
    return MHD_YES;
}

//  The request's end (answered, or the client gone): frees it.
static void s_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    zc_admin_request_t *request = (zc_admin_request_t *)*con_cls;
    if (!request) return;
    s_pending_remove((zc_admin_t *)cls, request);
    admin_request_free(request);
    *con_cls = NULL;
}

//  Fills addr from address (NULL: 127.0.0.1). Returns its length, or 0 if
//  address is not an IP address; *loopback says whether it is one.
static socklen_t s_address(const char *address, int port, struct sockaddr_storage *addr,
                           int *loopback)
{
    memset(addr, 0, sizeof *addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
    if (inet_pton(AF_INET, address ? address : "127.0.0.1", &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
        return sizeof *v4;
    }
    if (inet_pton(AF_INET6, address, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
        return sizeof *v6;
    }
    return 0;
}

//  Checks the settings. Returns 0, or -1 with a reason in err.
static int s_check(const zc_admin_config_t *config, int loopback, char *err, size_t errlen)
{
    const char *address = config->address ? config->address : "127.0.0.1";
    if (config->port < 0 || config->port > 65535)
        snprintf(err, errlen, "admin port %d out of range", config->port);
    else if (!!config->tls_cert != !!config->tls_key)
        snprintf(err, errlen, "HTTPS needs both a certificate and its private key");
    else if (config->tls_cert && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        snprintf(err, errlen, "this libmicrohttpd is built without TLS: no HTTPS");
    else if (!loopback && !config->tls_cert && !config->allow_plaintext)
        snprintf(err, errlen,
                 "%s is not a loopback address: the access key would cross the network in "
                 "clear; give a certificate for HTTPS, or allow plain HTTP explicitly",
                 address);
    else
        return 0;
    return -1;
}

//  Starts the daemon on addr. Returns it, or NULL.
static struct MHD_Daemon *s_daemon(zc_admin_t *self, int port, struct sockaddr_storage *addr)
{
    unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    if (addr->ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    if (self->tls_cert) flags |= MHD_USE_TLS;
    //  The TLS options come last: without TLS, the first NULL ends the list.
    return MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, s_access, self, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)addr, MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        MHD_OPTION_NOTIFY_CONNECTION, s_notify, self, MHD_OPTION_URI_LOG_CALLBACK, s_raw_target,
        self, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)256, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)60, self->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
        self->tls_cert, MHD_OPTION_HTTPS_MEM_KEY, self->tls_key, MHD_OPTION_END);
}

zc_admin_t *zc_admin_new(const zc_admin_config_t *config, zc_admin_handler_fn *fn, void *arg,
                         char *err, size_t errlen)
{
    assert(config && config->key && fn);
    struct sockaddr_storage addr;
    int loopback = 0;
    if (!s_address(config->address, config->port, &addr, &loopback)) {
        snprintf(err, errlen, "'%s' is not an IP address", config->address);
        return NULL;
    }
    if (s_check(config, loopback, err, errlen)) return NULL;
    zc_admin_t *self = (zc_admin_t *)calloc(1, sizeof(zc_admin_t));
    assert(self);
    self->key = strdup(config->key);
    self->handler = fn;
    self->handler_arg = arg;
    self->tls = config->tls_cert != NULL;
    self->tls_cert = self->tls ? strdup(config->tls_cert) : NULL;
    self->tls_key = self->tls ? strdup(config->tls_key) : NULL;
    admin_guard_init(&self->guard);
    self->denied = (admin_log_limit_t){"refused", 10000, 0, 0};
    self->daemon = s_daemon(self, config->port, &addr);
    if (!self->daemon) {
        snprintf(err, errlen, "cannot listen on %s port %d%s",
                 config->address ? config->address : "127.0.0.1", config->port,
                 self->tls ? " (or the certificate or key is not valid PEM)" : "");
        s_wipe_free(self->tls_key);
        free(self->tls_cert);
        s_wipe_free(self->key);
        free(self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : config->port;
    if (!loopback && !self->tls)
        zc_log(ZC_LOG_WARNING, "admin",
               "plain HTTP on %s port %d, as allowed: the access key crosses the network in clear",
               config->address, self->port);
    const char *host = !config->address || !strcmp(config->address, "0.0.0.0") ? "127.0.0.1"
                       : !strcmp(config->address, "::")                        ? "[::1]"
                                                                               : config->address;
    snprintf(self->host, sizeof self->host, strchr(host, ':') && *host != '[' ? "[%s]" : "%s",
             host);
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
    admin_guard_clear(&self->guard);
    if (self->denied.suppressed) admin_log_flush(&self->denied, self->denied.window_end);
    s_wipe_free(self->tls_key);
    free(self->tls_cert);
    s_wipe_free(self->key);
    free(self);
    *self_p = NULL;
}

int zc_admin_port(zc_admin_t *self)
{
    assert(self);
    return self->port;
}

const char *zc_admin_url(zc_admin_t *self, char *buf, size_t cap)
{
    assert(self);
    snprintf(buf, cap, "%s://%s:%d", self->tls ? "https" : "http", self->host, self->port);
    return buf;
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
    int64_t now = s_now_ms();
    int64_t due = MHD_get_timeout(self->daemon, &ms) == MHD_YES ? (int64_t)ms : -1;
    int64_t guard = admin_guard_due(&self->guard, now);
    int64_t denied = admin_log_due(&self->denied, now);
    if (guard >= 0 && (due < 0 || guard < due)) due = guard;
    if (denied >= 0 && (due < 0 || denied < due)) due = denied;
    return due > 60000 ? 60000 : (int)due;
}

void zc_admin_run(zc_admin_t *self)
{
    assert(self);
    MHD_run(self->daemon);
    int64_t now = s_now_ms();
    admin_guard_expire(&self->guard, now);
    admin_log_flush(&self->denied, now);
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

void zc_admin_reply_text(zc_admin_request_t *request, int status, const char *content_type,
                         const char *body)
{
    request->content_type = content_type;
    zc_admin_reply(request, status, body);
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
