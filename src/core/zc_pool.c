/*  zc_pool — a fixed set of threads that run submitted work in order.

    One mutex guards a FIFO of items; idle threads wait on a condition
    variable. Simple on purpose: the work it runs (an RPC handler, a task)
    costs far more than the lock.
*/
#include "zc_pool.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>

typedef struct s_item_t {
    zc_pool_fn *fn;
    void *item;
    struct s_item_t *next;
} s_item_t;

struct _zc_pool_t {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    s_item_t *head, *tail;
    size_t busy; //  queued + running
    int stopping;
    int threads;
    pthread_t *ids;
};

static void *s_run(void *arg)
{
    zc_pool_t *self = (zc_pool_t *)arg;
    pthread_mutex_lock(&self->lock);
    while (1) {
        while (!self->head && !self->stopping)
            pthread_cond_wait(&self->wake, &self->lock);
        s_item_t *item = self->head;
        if (!item) break; //  stopping, and nothing left to run
        self->head = item->next;
        if (!self->head) self->tail = NULL;
        pthread_mutex_unlock(&self->lock);
        item->fn(item->item);
        free(item);
        pthread_mutex_lock(&self->lock);
        self->busy--;
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

zc_pool_t *zc_pool_new(int threads)
{
    if (threads < 1 || threads > 256) return NULL;
    zc_pool_t *self = (zc_pool_t *)calloc(1, sizeof *self);
    assert(self);
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->wake, NULL);
    self->ids = (pthread_t *)calloc((size_t)threads, sizeof(pthread_t));
    assert(self->ids);
    for (int i = 0; i < threads; i++)
        if (pthread_create(&self->ids[self->threads], NULL, s_run, self) == 0) self->threads++;
    if (self->threads == 0) zc_pool_destroy(&self);
    return self;
}

void zc_pool_destroy(zc_pool_t **self_p)
{
    assert(self_p);
    zc_pool_t *self = *self_p;
    if (!self) return;
    pthread_mutex_lock(&self->lock);
    self->stopping = 1;
    pthread_cond_broadcast(&self->wake);
    pthread_mutex_unlock(&self->lock);
    for (int i = 0; i < self->threads; i++)
        pthread_join(self->ids[i], NULL);
    assert(!self->head);
    pthread_mutex_destroy(&self->lock);
    pthread_cond_destroy(&self->wake);
    free(self->ids);
    free(self);
    *self_p = NULL;
}

int zc_pool_submit(zc_pool_t *self, zc_pool_fn *fn, void *item)
{
    assert(self && fn);
    s_item_t *entry = (s_item_t *)malloc(sizeof *entry);
    assert(entry);
    entry->fn = fn;
    entry->item = item;
    entry->next = NULL;
    pthread_mutex_lock(&self->lock);
    if (self->stopping) {
        pthread_mutex_unlock(&self->lock);
        free(entry);
        return -1;
    }
    if (self->tail)
        self->tail->next = entry;
    else
        self->head = entry;
    self->tail = entry;
    self->busy++;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
    return 0;
}

size_t zc_pool_cancel(zc_pool_t *self, zc_pool_fn *cancel)
{
    assert(self);
    pthread_mutex_lock(&self->lock);
    s_item_t *list = self->head;
    self->head = self->tail = NULL;
    size_t count = 0;
    for (s_item_t *entry = list; entry; entry = entry->next)
        count++;
    self->busy -= count;
    pthread_mutex_unlock(&self->lock);
    while (list) {
        s_item_t *next = list->next;
        if (cancel) cancel(list->item);
        free(list);
        list = next;
    }
    return count;
}

int zc_pool_threads(zc_pool_t *self)
{
    assert(self);
    return self->threads;
}

size_t zc_pool_busy(zc_pool_t *self)
{
    assert(self);
    pthread_mutex_lock(&self->lock);
    size_t busy = self->busy;
    pthread_mutex_unlock(&self->lock);
    return busy;
}
