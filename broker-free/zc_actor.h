/*  zc_actor — a thread with a pipe to it, like CZMQ's zactor, whose
    destroy returns only once the thread and its end of the pipe are gone
    (private).

    zactor_destroy returns when the actor signals that its body returned,
    but the thread closes its end of the pipe after that signal. A
    zsys_shutdown that runs in between (at exit, or between a program's
    phases) finds that socket still open: it reports it "dangling", closes
    it under the thread's feet, and leaves the process's ZeroMQ context
    behind, so the next zsys_init asserts. zc_actor joins the thread
    instead. The body has zactor's contract: it signals the pipe once it is
    ready (zc_actor_new waits for that), and returns when it reads "$TERM".
*/
#ifndef ZC_ACTOR_H_INCLUDED
#define ZC_ACTOR_H_INCLUDED

#include <czmq.h>

typedef struct _zc_actor_t zc_actor_t;

//  An actor's body: runs on the actor's thread with its end of the pipe.
typedef void(zc_actor_fn)(zsock_t *pipe, void *args);

//  Starts fn(pipe, args) on a thread of its own and waits for its first
//  signal. Returns the actor, or NULL if no thread or pipe could be made.
zc_actor_t *zc_actor_new(zc_actor_fn *fn, void *args);

//  Sends "$TERM", waits for the thread to end, closes the pipe. Idempotent.
void zc_actor_destroy(zc_actor_t **self_p);

//  The caller's end of the pipe: send to, receive from and poll it.
zsock_t *zc_actor_sock(zc_actor_t *self);

#endif
