/*  zc_pool — a fixed set of threads that run submitted work in order
    (private to libzcluster).

    RPC handlers and task-queue handlers both need the same thing: run user
    code off the thread that owns the sockets or the Redis connection, on a
    bounded number of threads, first come first served, and hand the result
    back. The pool does the first part; each user hands results back its own
    way (RPC through an inproc socket to the node's thread, the queue worker
    under its own lock), from inside the work function.

    A pool of 0 threads does not exist: callers that are asked for no
    threads run the work inline.
*/
#ifndef ZC_POOL_H_INCLUDED
#define ZC_POOL_H_INCLUDED

#include <stddef.h>

typedef struct _zc_pool_t zc_pool_t;

//  Work: runs on a pool thread with the item it was submitted with.
typedef void(zc_pool_fn)(void *item);

//  Starts threads (1..256) threads. Returns NULL if threads is out of
//  range or no thread could be started.
zc_pool_t *zc_pool_new(int threads);

//  Waits for every submitted item to run, stops the threads, frees the pool
//  and sets *self_p to NULL; idempotent. Call zc_pool_cancel first to drop
//  the items that have not started.
void zc_pool_destroy(zc_pool_t **self_p);

//  Queues fn(item) to run on the next free thread. Returns 0, or -1 if the
//  pool is being destroyed.
int zc_pool_submit(zc_pool_t *self, zc_pool_fn *fn, void *item);

//  Removes the items that have not started, calling cancel(item) for each
//  on this thread (cancel may be NULL). Returns how many were removed.
size_t zc_pool_cancel(zc_pool_t *self, zc_pool_fn *cancel);

//  Returns the number of threads.
int zc_pool_threads(zc_pool_t *self);

//  Returns the number of items submitted and not yet finished (running or
//  waiting).
size_t zc_pool_busy(zc_pool_t *self);

#endif
