/*  zc_admin — the supervisor's HTTP admin endpoint (internal to libzcluster).

    A libmicrohttpd daemon (127.0.0.1 unless told; HTTPS when given a
    certificate), run from the master's own poll loop
    (no thread: poll zc_admin_fd, call zc_admin_run), that checks the access
    key of every request in constant time and hands authorised requests to
    one handler as a command: the path's segments, URL-decoded, and the
    query parameters. The handler answers with zc_admin_reply, at once or
    later (the connection waits, suspended, for operations such as a rolling
    reload that take a while). Responses are JSON.

    The key is accepted in an `X-Zcluster-Key` header, an `Authorization:
    Bearer KEY` header, or a `key` query parameter.

    Slow clients cannot starve it (zc_admin_guard.h), and what it logs
    about refused requests is escaped and rate-limited (zc_admin_log.h).
*/
#ifndef ZC_ADMIN_H_INCLUDED
#define ZC_ADMIN_H_INCLUDED

#include <stddef.h>

typedef struct _zc_admin_t zc_admin_t;
typedef struct _zc_admin_request_t zc_admin_request_t;

#define ZC_ADMIN_MAX_ARGS 16

//  Called on the loop's thread for each authorised request; must call
//  zc_admin_reply for it, now or later.
typedef void(zc_admin_handler_fn)(zc_admin_request_t *request, void *arg);

//  Where and how the endpoint listens.
typedef struct {
    const char *address;  //  an IPv4 or IPv6 address; NULL: 127.0.0.1
    int port;             //  0: any free port
    const char *key;      //  the access key
    const char *tls_cert; //  PEM certificate (chain) text; NULL: plain HTTP
    const char *tls_key;  //  PEM private key text of tls_cert
    int allow_plaintext;  //  1: plain HTTP on an address other than loopback
} zc_admin_config_t;

//  Listens as config says (copied). Plain HTTP on an address other than
//  loopback is refused unless config->allow_plaintext: the key would cross
//  the network in clear. Returns NULL with a reason in err if it cannot.
zc_admin_t *zc_admin_new(const zc_admin_config_t *config, zc_admin_handler_fn *fn, void *arg,
                         char *err, size_t errlen);

//  Answers every request still waiting with 503, stops the daemon, sets
//  *self_p to NULL; idempotent.
void zc_admin_destroy(zc_admin_t **self_p);

//  Returns the port it listens on.
int zc_admin_port(zc_admin_t *self);

//  Writes the URL a client on this host uses ("https://127.0.0.1:PORT";
//  a wildcard address is reached through loopback) into buf; returns buf.
const char *zc_admin_url(zc_admin_t *self, char *buf, size_t cap);

//  Returns the fd to poll for input (an epoll fd).
int zc_admin_fd(zc_admin_t *self);

//  Returns the ms until zc_admin_run is due regardless of input, or -1.
int zc_admin_timeout(zc_admin_t *self);

//  Does whatever I/O is ready; never blocks.
void zc_admin_run(zc_admin_t *self);

//  Runs the daemon for up to timeout_ms until no connection is open, so
//  replies just given reach their clients before the process exits.
void zc_admin_flush(zc_admin_t *self, int timeout_ms);

//  Returns "GET" or "POST" (other methods are refused before the handler).
const char *zc_admin_request_method(zc_admin_request_t *request);

//  Returns the number of path segments (0 for "/").
int zc_admin_request_argc(zc_admin_request_t *request);

//  Returns path segment i (URL-decoded), or NULL.
const char *zc_admin_request_arg(zc_admin_request_t *request, int i);

//  Returns the first value of query parameter name, or NULL.
const char *zc_admin_request_param(zc_admin_request_t *request, const char *name);

//  Fills out with up to max values of the repeated query parameter name, in
//  order. Returns how many there are (may exceed max).
int zc_admin_request_params(zc_admin_request_t *request, const char *name, const char **out,
                            int max);

//  Answers the request with an HTTP status and a JSON body (copied). The
//  request is gone after the call.
void zc_admin_reply(zc_admin_request_t *request, int status, const char *json);

//  Answers with a body of another type (content_type: a static string), as
//  GET /metrics does with the Prometheus text format.
void zc_admin_reply_text(zc_admin_request_t *request, int status, const char *content_type,
                         const char *body);

//  Returns 1 if the two keys are equal, taking a time that depends only on
//  the length of expected.
int zc_admin_key_equal(const char *expected, const char *given);

#endif
