/*  zc_admin_request — one request to the admin endpoint, as it arrives
    (private to zc_admin).

    The HTTP daemon (zc_admin.c) decodes the HTTP; what happens to a request
    before a handler sees it — which key it gives, whether its method and
    key are accepted, how its path splits into arguments, which query
    parameters it keeps — is decided here, without a connection, so that
    tests/fuzz_admin.c can drive it (and the handler behind it) with
    arbitrary requests.
*/
#ifndef ZC_ADMIN_REQUEST_H_INCLUDED
#define ZC_ADMIN_REQUEST_H_INCLUDED

#include "zc_admin.h"

#define ADMIN_MAX_PARAMS 64

struct MHD_Connection;

typedef enum {
    ADMIN_REQUEST_NEW,     //  not admitted yet
    ADMIN_REQUEST_WAITING, //  admitted: waits for zc_admin_reply
    ADMIN_REQUEST_ANSWERED //  status and body are set
} admin_request_state_t;

struct _zc_admin_request_t {
    zc_admin_t *admin;                 //  NULL without a daemon
    struct MHD_Connection *connection; //  NULL without a daemon
    admin_request_state_t state;
    int suspended;
    char method[8];
    char *path; //  owned copy; args point into it
    int argc;
    char *args[ZC_ADMIN_MAX_ARGS];
    int params;
    char *names[ADMIN_MAX_PARAMS], *values[ADMIN_MAX_PARAMS];
    int overflow; //  more path segments or parameters than it can hold
    int status;
    char *body;
    const char *content_type; //  of body; NULL: application/json
    zc_admin_request_t *next; //  in the daemon's list of deferred requests
};

//  Creates a request that arrived on connection of admin (both may be NULL).
zc_admin_request_t *admin_request_new(zc_admin_t *admin, struct MHD_Connection *connection);

//  Frees the request and everything it owns.
void admin_request_free(zc_admin_request_t *request);

//  Keeps a query parameter (copied; value NULL counts as ""). Returns 0, or
//  -1 if the request holds ADMIN_MAX_PARAMS already (it will be refused).
int admin_request_add_param(zc_admin_request_t *request, const char *name, const char *value);

//  The access key a request gives, from its X-Zcluster-Key header, else its
//  "Authorization: Bearer KEY" header, else its key query parameter (each
//  NULL when absent); "" if none.
const char *admin_given_key(const char *key_header, const char *authorization,
                            const char *key_param);

//  Admits a new request, its parameters added: a method other than GET or
//  POST is answered 405, a given key other than expected_key 401, more than
//  ZC_ADMIN_MAX_ARGS path segments or ADMIN_MAX_PARAMS parameters 400 (a
//  command never sees part of its request); the request is then ANSWERED
//  and -1 returns (the caller logs refusals: it knows the raw target). Otherwise the request takes
//  the method and url's segments (url as the HTTP layer decoded it), waits for its answer, and 0
//  returns.
int admin_request_admit(zc_admin_request_t *request, const char *method, const char *url,
                        const char *expected_key, const char *given_key);

#endif
