/*  zc_zap — the process's ZAP handler. See zc_zap.h.

    The handler is a CZMQ actor with a REP socket bound to the ZAP endpoint.
    Its answer depends only on the request (domain, mechanism, client key),
    so it needs no state besides its reference count, and a mesh that goes
    away leaves nothing behind in it.
*/
#include "zc_zap.h"
#include "zc_actor.h"
#include "zc_log.h"

#include <czmq.h>
#include <pthread.h>
#include <string.h>

#define ZAP_ENDPOINT  "inproc://zeromq.zap.01"
#define DOMAIN_PREFIX "zc.curve."

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static zc_actor_t *s_handler;
static size_t s_users;

void zc_zap_domain(const char *public_key, char *out)
{
    snprintf(out, ZC_ZAP_DOMAIN_MAX, "%s%.40s", DOMAIN_PREFIX, public_key);
}

//  Returns 1 if a client of this mechanism with these credentials may join
//  a server socket of this domain.
static int s_admit(const char *domain, const char *mechanism, zframe_t *credentials)
{
    size_t prefix = strlen(DOMAIN_PREFIX);
    if (strncmp(domain, DOMAIN_PREFIX, prefix) != 0) return 1; //  not ours: as if no handler
    if (strcmp(mechanism, "CURVE") != 0 || !credentials || zframe_size(credentials) != 32) return 0;
    char key[41];
    if (!zmq_z85_encode(key, zframe_data(credentials), 32)) return 0;
    return strlen(domain + prefix) == 40 && memcmp(key, domain + prefix, 40) == 0;
}

//  Answers one request: version, request id, domain, address, identity,
//  mechanism, credentials... in; version, request id, status code, status
//  text, user id, metadata out.
static void s_answer(zsock_t *rep)
{
    zmsg_t *request = zmsg_recv(rep);
    if (!request) return;
    char *version = zmsg_popstr(request);
    char *id = zmsg_popstr(request);
    char *domain = zmsg_popstr(request);
    char *address = zmsg_popstr(request);
    char *identity = zmsg_popstr(request);
    char *mechanism = zmsg_popstr(request);
    zframe_t *credentials = zmsg_pop(request);
    int ok = version && id && domain && mechanism && strcmp(version, "1.0") == 0 &&
             s_admit(domain, mechanism, credentials);
    zsock_send(rep, "ssssss", "1.0", id ? id : "", ok ? "200" : "400",
               ok ? "OK" : "not a member of this cluster", "", "");
    zframe_destroy(&credentials);
    zstr_free(&version);
    zstr_free(&id);
    zstr_free(&domain);
    zstr_free(&address);
    zstr_free(&identity);
    zstr_free(&mechanism);
    zmsg_destroy(&request);
}

//  The handler's thread: says whether it could bind, then answers requests
//  until $TERM.
static void s_actor(zsock_t *pipe, void *args)
{
    zsock_signal(pipe, 0); //  zc_actor_new waits for this one, whatever it says
    zsock_t *rep = zsock_new(ZMQ_REP);
    if (!rep || zsock_bind(rep, ZAP_ENDPOINT) != 0) {
        zsock_destroy(&rep);
        zstr_send(pipe, "fail");
        return;
    }
    zstr_send(pipe, "ok");
    zpoller_t *poller = zpoller_new(pipe, rep, NULL);
    zpoller_set_nonstop(poller, true); //  a signal to the process must not stop the handler
    while (1) {
        void *which = zpoller_wait(poller, -1);
        if (which == rep)
            s_answer(rep);
        else if (which == pipe) {
            char *command = zstr_recv(pipe);
            int term = !command || strcmp(command, "$TERM") == 0;
            zstr_free(&command);
            if (term) break;
        }
    }
    zpoller_destroy(&poller);
    //  Unbound now, not when libzmq's reaper gets to the closed socket: a
    //  node started right after the last one went (a test, a restart in
    //  the same process) binds the same endpoint, and on a busy machine
    //  the reaper can still hold it (EADDRINUSE).
    zsock_unbind(rep, ZAP_ENDPOINT);
    zsock_destroy(&rep);
}

int zc_zap_acquire(void)
{
    pthread_mutex_lock(&s_lock);
    if (!s_handler) {
        s_handler = zc_actor_new(s_actor, NULL);
        char *status = s_handler ? zstr_recv(zc_actor_sock(s_handler)) : NULL;
        if (s_handler && (!status || strcmp(status, "ok") != 0)) zc_actor_destroy(&s_handler);
        zstr_free(&status);
    }
    int rc = s_handler ? 0 : -1;
    if (rc == 0)
        s_users++;
    else
        zc_log(ZC_LOG_ERROR, "zap",
               "cannot serve %s: is another ZAP handler (zauth) running in this process?",
               ZAP_ENDPOINT);
    pthread_mutex_unlock(&s_lock);
    return rc;
}

void zc_zap_release(void)
{
    pthread_mutex_lock(&s_lock);
    if (s_users && --s_users == 0) zc_actor_destroy(&s_handler);
    pthread_mutex_unlock(&s_lock);
}
