/*  zc_admin_guard — keeps slow or half-open clients from starving the
    admin endpoint (private to zc_admin).

    libmicrohttpd's connection timeout is an inactivity timeout: a client
    that sends one header byte now and then keeps its connection, and 64 of
    them used to fill every slot, so the operator's `zcluster health` found
    no room. The guard tracks every connection from its accept to its close
    and holds two rules:
      - deadline: a connection has ADMIN_GUARD_DEADLINE_MS from its accept
        to deliver its whole request (TLS handshake, request line, headers,
        body); after that it is shut down, however active it is;
      - room: at most ADMIN_GUARD_MAX_INCOMPLETE connections may be still
        delivering their request; one more evicts the oldest of them.
    A client that sends its request at once (every real client: the CLI,
    curl) is complete within a round trip, so it is never the oldest for
    long and always finds room, whatever number of slow clients there are.
    Complete requests answer at once with "Connection: close", so only an
    authorised long operation (a rolling reload) keeps a connection.

    A connection is shut down (shutdown(2), not close(2): the daemon still
    owns the descriptor), which the daemon sees as the client hanging up.
    Closures are logged, rate-limited like refusals.
*/
#ifndef ZC_ADMIN_GUARD_H_INCLUDED
#define ZC_ADMIN_GUARD_H_INCLUDED

#include "zc_admin_log.h"

#include <stdint.h>

#define ADMIN_GUARD_DEADLINE_MS    5000
#define ADMIN_GUARD_MAX_INCOMPLETE 32

typedef struct _admin_conn_t admin_conn_t;

struct _admin_conn_t {
    int fd;
    int64_t opened; //  ms, monotonic
    int complete;   //  its request is in (admitted or refused)
    int shut;       //  shut down by the guard
    char *target;   //  the request target as sent, once known
    admin_conn_t *prev, *next;
};

typedef struct {
    admin_conn_t *oldest, *newest;
    int incomplete;        //  neither complete nor shut
    int max_incomplete;    //  ADMIN_GUARD_MAX_INCOMPLETE unless a test says
    int64_t deadline_ms;   //  ADMIN_GUARD_DEADLINE_MS unless a test says
    admin_log_limit_t log; //  closures
} admin_guard_t;

//  Sets the defaults.
void admin_guard_init(admin_guard_t *self);

//  Tracks a connection just accepted on fd, evicting the oldest incomplete
//  one if there is no room. Returns the new connection.
admin_conn_t *admin_guard_open(admin_guard_t *self, int fd, int64_t now);

//  The connection's request is in: the rules no longer apply to it.
void admin_guard_complete(admin_guard_t *self, admin_conn_t *conn);

//  Keeps target (copied) as the connection's request target.
void admin_guard_set_target(admin_conn_t *conn, const char *target);

//  Forgets a connection the daemon closed, and frees it.
void admin_guard_close(admin_guard_t *self, admin_conn_t *conn);

//  Shuts down every incomplete connection past its deadline; writes the
//  closure log's summary when due.
void admin_guard_expire(admin_guard_t *self, int64_t now);

//  Returns the ms until admin_guard_expire has something to do, or -1.
int64_t admin_guard_due(admin_guard_t *self, int64_t now);

//  Frees every connection still tracked (the daemon is stopped).
void admin_guard_clear(admin_guard_t *self);

#endif
