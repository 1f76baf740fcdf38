/*  zc_actor — a thread with a pipe to it, joined on destroy. See zc_actor.h.
 */
#include "zc_actor.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>

struct _zc_actor_t {
    zsock_t *pipe;    //  the caller's end
    zsock_t *backend; //  the thread's end, closed by the thread before it ends
    zc_actor_fn *fn;
    void *args;
    pthread_t thread;
};

static void *s_run(void *arg)
{
    zc_actor_t *self = (zc_actor_t *)arg;
    self->fn(self->backend, self->args);
    zsock_destroy(&self->backend); //  before the join returns: never left dangling
    return NULL;
}

zc_actor_t *zc_actor_new(zc_actor_fn *fn, void *args)
{
    assert(fn);
    zc_actor_t *self = (zc_actor_t *)calloc(1, sizeof *self);
    if (!self) return NULL;
    self->fn = fn;
    self->args = args;
    self->pipe = zsys_create_pipe(&self->backend);
    if (!self->pipe || pthread_create(&self->thread, NULL, s_run, self) != 0) {
        zsock_destroy(&self->backend);
        zsock_destroy(&self->pipe);
        free(self);
        return NULL;
    }
    zsock_wait(self->pipe); //  the body's "ready"
    return self;
}

void zc_actor_destroy(zc_actor_t **self_p)
{
    assert(self_p);
    zc_actor_t *self = *self_p;
    if (!self) return;
    //  A body that ended on its own reads nothing: the send must not block.
    zsock_set_sndtimeo(self->pipe, 0);
    zstr_send(self->pipe, "$TERM");
    pthread_join(self->thread, NULL);
    zsock_destroy(&self->pipe);
    free(self);
    *self_p = NULL;
}

zsock_t *zc_actor_sock(zc_actor_t *self)
{
    assert(self);
    return self->pipe;
}
