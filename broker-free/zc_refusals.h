/*  zc_refusals — connections a mesh refused, counted and logged at a
    bounded rate (private to the messaging plane).

    With CURVE, a process without the cluster's credentials fails the
    handshake: a plaintext peer (mechanism mismatch), a peer with the wrong
    server key (cryptographic error) or with a key that is not the
    cluster's (refused by the ZAP handler). libzmq reports each failure as
    a monitor event on the socket; this class watches the mesh's binding
    sockets for them, and the mesh hands it the failures of its own
    connections too. Each one is counted; the first is logged, then at most
    one line per ZC_REFUSALS_LOG_MS says how many more there were, so a
    peer retrying every 100 ms cannot fill the log.
*/
#ifndef ZC_REFUSALS_H_INCLUDED
#define ZC_REFUSALS_H_INCLUDED

#include <stdint.h>
#include <zmq.h>

#define ZC_REFUSALS_LOG_MS 10000
//  Sockets one object watches (the mesh's PUB and ROUTER).
#define ZC_REFUSALS_SOCKETS_MAX 2

typedef struct _zc_refusals_t zc_refusals_t;

//  Creates a counter whose log lines name source (the node id).
zc_refusals_t *zc_refusals_new(const char *source);

//  Stops watching, destroys the object and sets *self_p to NULL; idempotent.
void zc_refusals_destroy(zc_refusals_t **self_p);

//  Watches a binding socket (raw libzmq handle) named name ("PUB") for
//  failed handshakes. Returns 0, or -1 past ZC_REFUSALS_SOCKETS_MAX or if
//  the monitor cannot be set up.
int zc_refusals_watch(zc_refusals_t *self, void *socket, const char *name);

//  Fills items with the monitors' file descriptors to poll; returns how
//  many. A descriptor is readable when its monitor has news since
//  zc_refusals_drain, which reads each monitor until it is empty.
int zc_refusals_pollitems(zc_refusals_t *self, zmq_pollitem_t *items);

//  Reads the monitors' events without waiting, counting and logging the
//  refusals, and writes the summary line if one is due.
void zc_refusals_drain(zc_refusals_t *self);

//  Counts and logs one failed handshake (a monitor event and its value)
//  seen on where ("PUB", or "to peer n2" for a connection of ours). Other events are ignored.
//  Returns 1 if the event was a refusal.
int zc_refusals_note(zc_refusals_t *self, const char *where, uint16_t event, uint32_t value);

//  Returns the number of refusals so far.
uint64_t zc_refusals_count(zc_refusals_t *self);

#endif
