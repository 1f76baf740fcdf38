/*  zc_mesh — the broker-free messaging plane: one node's sockets and peers.

    Why it looks like this. Zyre moves every message through an actor pipe,
    which costs two extra socket hops and a thread switch per message. Here
    the caller's thread owns the sockets: a send is one zmq_msg_send of a
    single frame on the PUB or a DEALER, a receive is one zmq_msg_recv on
    the SUB (two on the ROUTER, which prefixes the routing id), and
    the only per-message work beside that is encoding or decoding a header
    of a few dozen bytes into a fixed buffer; a received frame is read into
    the message handed out and not copied.

    Waiting. A socket read until it is empty (drained) is not asked again
    until its file descriptor fires: libzmq signals that descriptor when a
    drained socket has news, so a busy receiver makes no poll system call
    per message, and an idle one waits in a single poll() on the data
    sockets' and the connection monitors' descriptors. zmq_poll would ask
    every socket for its events, a system call each, before and after the
    wait, and the monitors, which hardly ever have anything, would cost
    that on every wait.

    Sequence numbers. A sender numbers each stream a receiver sees whole:
    its public messages, its messages to each group, and its private-plane
    messages to each peer. The receiver keeps the next expected number per
    (sender, stream). The first message of a stream sets the baseline (a
    subscriber that joins late misses earlier messages by design, which is
    not loss); a number that goes backwards means the sender restarted and
    also sets the baseline; a number that skips ahead counts the gap as
    lost. Leaving a group forgets that group's baselines.

    Bad input is dropped, counted, and logged once per source (sender id,
    or the ROUTER routing id, or "unknown" for SUB frames whose header
    cannot be read). The log-once set is bounded.

    Batch frames (docs/PROTOCOL.md section 8.1) are checked whole when
    read, then handed out one message per receive, each judged and counted
    as if it had come alone; the frame stays in self->msg.payload until
    its last message is taken. Sending, and when to batch, is
    zc_mesh_send.c; the state both halves share is zc_mesh_internal.h.
*/
#include "zc_mesh_internal.h"
#include "zc_inproc.h"
#include "zc_log.h"
#include "zc_msg.h"
#include "zc_refusals.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  --------------------------------------------------------------------------
//  Containers

static void s_peer_destroy(void **item)
{
    mesh_peer_t *peer = (mesh_peer_t *)*item;
    if (peer) {
        zsock_destroy(&peer->dealer);
        zc_batch_destroy(&peer->batch);
        free(peer);
        *item = NULL;
    }
}

static void s_sender_destroy(void **item)
{
    mesh_sender_t *sender = (mesh_sender_t *)*item;
    if (sender) {
        zhashx_destroy(&sender->next_group);
        free(sender);
        *item = NULL;
    }
}

static void s_free(void **item)
{
    free(*item);
    *item = NULL;
}

static zhashx_t *s_hash_new(zhashx_destructor_fn *destructor)
{
    zhashx_t *hash = zhashx_new();
    assert(hash);
    zhashx_set_destructor(hash, destructor);
    return hash;
}

//  --------------------------------------------------------------------------
//  Construction

zc_mesh_t *zc_mesh_new(const char *id)
{
    char generated[ZC_NAME_MAX + 1];
    if (!id) {
        zuuid_t *uuid = zuuid_new();
        snprintf(generated, sizeof generated, "%.12s", zuuid_str_canonical(uuid));
        zuuid_destroy(&uuid);
        id = generated;
    }
    if (!zc_wire_name_valid(id)) return NULL;
    zc_mesh_t *self = (zc_mesh_t *)calloc(1, sizeof(zc_mesh_t));
    assert(self);
    snprintf(self->id, sizeof self->id, "%s", id);
    self->id_len = strlen(self->id);
    snprintf(self->bind_pub, ENDPOINT_MAX, "tcp://127.0.0.1:*");
    snprintf(self->bind_router, ENDPOINT_MAX, "tcp://127.0.0.1:*");
    self->max_msg_size = ZC_MESH_MAX_MSG_SIZE_DEFAULT;
    self->hwm = 100000;
    self->heartbeat_ivl = 500;
    self->heartbeat_timeout = 1500;
    self->peers = s_hash_new(s_peer_destroy);
    self->groups = s_hash_new(NULL);
    self->group_seq = s_hash_new(s_free);
    self->senders = s_hash_new(s_sender_destroy);
    self->handlers = s_hash_new(s_free);
    self->reported = s_hash_new(NULL);
    zmq_msg_init(&self->msg.payload);
    zmq_msg_init(&self->routing_id);
    return self;
}

void zc_mesh_destroy(zc_mesh_t **self_p)
{
    assert(self_p);
    zc_mesh_t *self = *self_p;
    if (!self) return;
    if (self->started) zc_mesh_flush(self); //  what is held goes, as far as it can
    zc_batch_destroy(&self->pub_batch);
    zmq_msg_close(&self->msg.payload);
    zmq_msg_close(&self->routing_id);
    zhashx_destroy(&self->peers);
    zhashx_destroy(&self->groups);
    zhashx_destroy(&self->group_seq);
    zhashx_destroy(&self->senders);
    zhashx_destroy(&self->handlers);
    zhashx_destroy(&self->reported);
    if (self->sub_handle && self->monitor_handle) zmq_socket_monitor(self->sub_handle, NULL, 0);
    zc_refusals_destroy(&self->refusals);
    zsock_destroy(&self->monitor);
    zsock_destroy(&self->sub);
    zsock_destroy(&self->pub);
    zsock_destroy(&self->router);
    zc_security_destroy(&self->owned_security);
    free(self);
    *self_p = NULL;
}

const char *zc_mesh_id(zc_mesh_t *self)
{
    assert(self);
    return self->id;
}

void zc_mesh_set_endpoints(zc_mesh_t *self, const char *pub, const char *router)
{
    assert(self && !self->started);
    if (pub) snprintf(self->bind_pub, ENDPOINT_MAX, "%s", pub);
    if (router) snprintf(self->bind_router, ENDPOINT_MAX, "%s", router);
}

void zc_mesh_set_advertise_host(zc_mesh_t *self, const char *host)
{
    assert(self && !self->started);
    snprintf(self->advertise_host, ENDPOINT_MAX, "%s", host ? host : "");
}

void zc_mesh_set_security(zc_mesh_t *self, zc_security_t *security)
{
    assert(self && !self->started);
    self->security = security;
}

void zc_mesh_set_max_msg_size(zc_mesh_t *self, size_t max_size)
{
    assert(self && !self->started);
    self->max_msg_size = max_size;
}

void zc_mesh_set_hwm(zc_mesh_t *self, int hwm)
{
    assert(self && !self->started);
    self->hwm = hwm;
}

void zc_mesh_set_heartbeat(zc_mesh_t *self, int interval_ms, int timeout_ms)
{
    assert(self && !self->started);
    self->heartbeat_ivl = interval_ms;
    self->heartbeat_timeout = timeout_ms;
}

//  The endpoint peers connect to: the bound one, with the advertised host
//  in place of its host when one is set (another interface, NAT, a name),
//  and in place of a wildcard always (this host's name by default).
static void s_advertise(zc_mesh_t *self, zsock_t *sock, char *out)
{
    char *last = zsock_last_endpoint(sock);
    const char *wild = "tcp://0.0.0.0:";
    const char *port = last && strncmp(last, "tcp://", 6) == 0 ? strrchr(last, ':') : NULL;
    int wildcard = last && strncmp(last, wild, strlen(wild)) == 0;
    if (port && (wildcard || *self->advertise_host)) {
        char host[ENDPOINT_MAX] = "localhost";
        if (*self->advertise_host)
            snprintf(host, sizeof host, "%s", self->advertise_host);
        else
            gethostname(host, sizeof host - 1);
        //  An IPv6 address goes in brackets.
        int v6 = strchr(host, ':') && host[0] != '[';
        snprintf(out, ENDPOINT_MAX, v6 ? "tcp://[%.200s]:%.40s" : "tcp://%.200s:%.40s", host,
                 port + 1);
    } else
        snprintf(out, ENDPOINT_MAX, "%s", last ? last : "");
    zstr_free(&last);
}

static void s_set_common(zc_mesh_t *self, zsock_t *sock)
{
    zsock_set_linger(sock, 0);
    zsock_set_sndhwm(sock, self->hwm);
    zsock_set_rcvhwm(sock, self->hwm);
    zsock_set_maxmsgsize(sock, (int)(self->max_msg_size + ZC_MESH_TRANSPORT_SLACK));
}

//  Takes the default security, the credentials file named by $ZC_KEYS, if
//  none was set. Returns 0, or -1 (logged, errno EACCES) if it is unusable.
static int s_default_security(zc_mesh_t *self)
{
    if (self->security) return 0;
    self->owned_security = zc_security_new();
    self->security = self->owned_security;
    if (zc_security_load(self->security, NULL) == 0) return 0;
    zc_log(ZC_LOG_ERROR, self->id, "%s", zc_security_errstr(self->security));
    errno = EACCES;
    return -1;
}

static void s_monitor_events(zc_mesh_t *self);

//  Collects the descriptors a wait polls, then reads the monitors empty so
//  that theirs signal the next event. Returns 0 (started), or -1.
static int s_fds(zc_mesh_t *self)
{
    zsock_t *sockets[] = {self->sub, self->router, self->monitor};
    int n = 0;
    for (; n < 3; n++)
        self->fds[n] = (struct pollfd){.fd = zsock_fd(sockets[n]), .events = POLLIN};
    zmq_pollitem_t items[ZC_REFUSALS_SOCKETS_MAX];
    int watched = zc_refusals_pollitems(self->refusals, items);
    for (int i = 0; i < watched; i++)
        self->fds[n++] = (struct pollfd){.fd = items[i].fd, .events = POLLIN};
    self->fd_count = n;
    self->started = 1;
    s_monitor_events(self);
    return 0;
}

int zc_mesh_start(zc_mesh_t *self)
{
    assert(self && !self->started);
    if (s_default_security(self)) return -1;
    if (!zc_security_curve(self->security))
        zc_log(ZC_LOG_WARNING, self->id,
               "no cluster credentials (--keys or ZC_KEYS): the mesh is not authenticated, "
               "anyone who reaches its ports can join");
    self->pub = zsock_new(ZMQ_PUB);
    self->router = zsock_new(ZMQ_ROUTER);
    self->sub = zsock_new(ZMQ_SUB);
    if (!self->pub || !self->router || !self->sub) return -1;
    self->pub_handle = zsock_resolve(self->pub);
    self->router_handle = zsock_resolve(self->router);
    self->sub_handle = zsock_resolve(self->sub);
    s_set_common(self, self->pub);
    s_set_common(self, self->router);
    s_set_common(self, self->sub);
    //  A restarted peer that reuses its id takes over its old routing id.
    zsock_set_router_handover(self->router, 1);
    zsock_set_heartbeat_ivl(self->sub, self->heartbeat_ivl);
    zsock_set_heartbeat_timeout(self->sub, self->heartbeat_timeout);
    zsock_set_heartbeat_ttl(self->sub, self->heartbeat_timeout);
    //  Heartbeats start after the ZMTP handshake: a peer that stops answering
    //  during it must drop within the same bound.
    zsock_set_handshake_ivl(self->sub, self->heartbeat_timeout);
    zsock_set_subscribe(self->sub, "P");
    if (zc_security_apply_server(self->security, self->pub_handle) ||
        zc_security_apply_server(self->security, self->router_handle))
        return -1;
    if (zsock_bind(self->pub, "%s", self->bind_pub) == -1 ||
        zsock_bind(self->router, "%s", self->bind_router) == -1) {
        zc_log(ZC_LOG_ERROR, self->id, "cannot bind %s / %s: %s", self->bind_pub, self->bind_router,
               zmq_strerror(zmq_errno()));
        return -1;
    }
    s_advertise(self, self->pub, self->pub_endpoint);
    s_advertise(self, self->router, self->router_endpoint);
    self->refusals = zc_refusals_new(self->id);
    if (zc_refusals_watch(self->refusals, self->pub_handle, "PUB") ||
        zc_refusals_watch(self->refusals, self->router_handle, "ROUTER"))
        return -1;

    //  Connections to peers' PUBs are watched: a drop means the peer closed,
    //  died (the kernel resets the connection) or went silent past the
    //  heartbeat timeout. Only a connection whose handshake succeeded
    //  counts as up, so a peer that cannot authenticate is never "lost".
    zc_inproc_endpoint(self->monitor_endpoint, sizeof self->monitor_endpoint, "mesh-monitor");
    if (zmq_socket_monitor(self->sub_handle, self->monitor_endpoint,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH))
        return -1;
    self->monitor = zsock_new_pair(self->monitor_endpoint);
    if (!self->monitor) return -1;
    self->monitor_handle = zsock_resolve(self->monitor);
    return s_fds(self);
}

const char *zc_mesh_pub_endpoint(zc_mesh_t *self)
{
    assert(self);
    return self->pub_endpoint;
}

const char *zc_mesh_router_endpoint(zc_mesh_t *self)
{
    assert(self);
    return self->router_endpoint;
}

//  --------------------------------------------------------------------------
//  Peers

static int s_endpoint_valid(const char *endpoint)
{
    return endpoint && strlen(endpoint) < ENDPOINT_MAX && strstr(endpoint, "://") != NULL;
}

int zc_mesh_peer_add(zc_mesh_t *self, const char *id, const char *pub_endpoint,
                     const char *router_endpoint, const char *curve_key)
{
    assert(self && self->started);
    if (!zc_wire_name_valid(id) || strcmp(id, self->id) == 0 || !s_endpoint_valid(pub_endpoint) ||
        !s_endpoint_valid(router_endpoint) || (curve_key && !zc_security_key_valid(curve_key))) {
        errno = EINVAL;
        return -1;
    }
    if (curve_key && !zc_security_curve(self->security)) {
        errno = ENOTSUP; //  a key promises CURVE: never connect in plaintext instead
        return -1;
    }
    mesh_peer_t *known = (mesh_peer_t *)zhashx_lookup(self->peers, id);
    if (known) {
        if (strcmp(known->pub_endpoint, pub_endpoint) == 0 &&
            strcmp(known->router_endpoint, router_endpoint) == 0)
            return 0;
        zc_mesh_peer_remove(self, id);
    }
    //  It reads version 1 until told otherwise: what the PUB holds in a
    //  batch goes before it can subscribe.
    if (self->pub_batch) zc_batch_send(self->pub_batch, 0);
    mesh_peer_t *peer = (mesh_peer_t *)calloc(1, sizeof(mesh_peer_t));
    assert(peer);
    snprintf(peer->id, sizeof peer->id, "%s", id);
    snprintf(peer->pub_endpoint, ENDPOINT_MAX, "%s", pub_endpoint);
    snprintf(peer->router_endpoint, ENDPOINT_MAX, "%s", router_endpoint);
    peer->dealer = zsock_new(ZMQ_DEALER);
    if (!peer->dealer) {
        free(peer);
        return -1;
    }
    peer->dealer_handle = zsock_resolve(peer->dealer);
    s_set_common(self, peer->dealer);
    zsock_set_identity(peer->dealer, self->id);
    //  No heartbeats here: the SUB's connection to the same peer already
    //  watches it, and every heartbeat costs both ends a wake-up.
    zsock_set_handshake_ivl(peer->dealer, self->heartbeat_timeout);
    //  Connecting runs the SUB's pending commands: read it before waiting.
    self->drained[SOCK_SUB] = 0;
    //  The SUB's CURVE server key is taken per connection at connect time.
    if (zc_security_apply_client(self->security, peer->dealer_handle, curve_key) ||
        zc_security_apply_client(self->security, self->sub_handle, curve_key) ||
        zmq_connect(peer->dealer_handle, router_endpoint) ||
        zmq_connect(self->sub_handle, pub_endpoint)) {
        zc_log(ZC_LOG_WARNING, self->id, "cannot connect to peer %s at %s / %s: %s", id,
               pub_endpoint, router_endpoint, zmq_strerror(zmq_errno()));
        zmq_disconnect(self->sub_handle, pub_endpoint);
        zsock_destroy(&peer->dealer);
        free(peer);
        return -1;
    }
    peer->wire = 1; //  until zc_mesh_peer_set_wire says more
    self->peers_v1++;
    zhashx_insert(self->peers, id, peer);
    zc_log(ZC_LOG_DEBUG, self->id, "peer %s added (%s, %s)", id, pub_endpoint, router_endpoint);
    return 0;
}

int zc_mesh_peer_remove(zc_mesh_t *self, const char *id)
{
    assert(self);
    mesh_peer_t *peer = (mesh_peer_t *)zhashx_lookup(self->peers, id);
    if (!peer) return -1;
    zmq_disconnect(self->sub_handle, peer->pub_endpoint);
    self->drained[SOCK_SUB] = 0; //  that ran the SUB's pending commands
    self->last_peer = NULL;
    zc_mesh_send_forget(self, peer);
    zhashx_delete(self->peers, id);
    zhashx_delete(self->senders, id);
    self->last_sender = NULL;
    zc_log(ZC_LOG_DEBUG, self->id, "peer %s removed", id);
    return 0;
}

int zc_mesh_peer_exists(zc_mesh_t *self, const char *id)
{
    assert(self);
    return id && zhashx_lookup(self->peers, id) != NULL;
}

size_t zc_mesh_peer_count(zc_mesh_t *self)
{
    assert(self);
    return zhashx_size(self->peers);
}

void zc_mesh_on_peer_lost(zc_mesh_t *self, zc_mesh_peer_fn *fn, void *arg)
{
    assert(self);
    self->peer_lost_fn = fn;
    self->peer_lost_arg = arg;
}

void zc_mesh_on_peer_back(zc_mesh_t *self, zc_mesh_peer_fn *fn, void *arg)
{
    assert(self);
    self->peer_back_fn = fn;
    self->peer_back_arg = arg;
}

//  --------------------------------------------------------------------------
//  Groups

int zc_mesh_join(zc_mesh_t *self, const char *group)
{
    assert(self && self->started);
    uint8_t topic[ZC_WIRE_TOPIC_MAX];
    int len = zc_wire_topic_encode(ZC_KIND_GROUP, group, topic, sizeof topic);
    if (len < 0) return -1;
    if (zhashx_lookup(self->groups, group)) return 0;
    zhashx_insert(self->groups, group, (void *)1);
    return zmq_setsockopt(self->sub_handle, ZMQ_SUBSCRIBE, topic, (size_t)len);
}

int zc_mesh_leave(zc_mesh_t *self, const char *group)
{
    assert(self && self->started);
    if (!group || !zhashx_lookup(self->groups, group)) return -1;
    uint8_t topic[ZC_WIRE_TOPIC_MAX];
    int len = zc_wire_topic_encode(ZC_KIND_GROUP, group, topic, sizeof topic);
    zhashx_delete(self->groups, group);
    for (mesh_sender_t *s = (mesh_sender_t *)zhashx_first(self->senders); s;
         s = (mesh_sender_t *)zhashx_next(self->senders))
        if (s->next_group) zhashx_delete(s->next_group, group);
    return zmq_setsockopt(self->sub_handle, ZMQ_UNSUBSCRIBE, topic, (size_t)len);
}

int zc_mesh_in_group(zc_mesh_t *self, const char *group)
{
    assert(self);
    return group && zhashx_lookup(self->groups, group) != NULL;
}

//  --------------------------------------------------------------------------
//  Handlers

int zc_mesh_on(zc_mesh_t *self, const char *type, zc_mesh_handler_fn *fn, void *arg)
{
    assert(self);
    if (!zc_wire_name_valid(type)) return -1;
    self->last_type[0] = 0; //  the one-entry lookup cache may be stale now
    if (!fn) {
        zhashx_delete(self->handlers, type);
        return 0;
    }
    mesh_handler_t *handler = (mesh_handler_t *)malloc(sizeof(mesh_handler_t));
    assert(handler);
    handler->fn = fn;
    handler->arg = arg;
    zhashx_update(self->handlers, type, handler);
    return 0;
}

//  --------------------------------------------------------------------------
//  Receiving

//  Logs bad input once per source. Past MAX_REPORTED sources one last line
//  says so and drops are only counted: sender names are claims, and a peer
//  can make up a new one for every message.
static void s_report(zc_mesh_t *self, const char *source, const char *what)
{
    if (zhashx_lookup(self->reported, source)) return;
    size_t known = zhashx_size(self->reported);
    if (known > MAX_REPORTED) return;
    if (known == MAX_REPORTED) {
        zhashx_insert(self->reported, "", (void *)1); //  never a source: marks this line
        zc_log(ZC_LOG_WARNING, self->id,
               "bad input from more than %d sources; further drops are only counted", MAX_REPORTED);
        return;
    }
    zhashx_insert(self->reported, source, (void *)1);
    zc_log(ZC_LOG_WARNING, self->id, "dropped %s from %s (further drops from it are only counted)",
           what, source);
}

//  Advances the expected sequence number of one stream; returns messages lost.
static uint64_t s_track(uint64_t *next, uint64_t seq)
{
    uint64_t lost = 0;
    if (*next != 0 && seq > *next) lost = seq - *next;
    *next = seq + 1;
    return lost;
}

static void s_sequence(zc_mesh_t *self, const zc_header_t *header, const char *group)
{
    //  A header that repeats the last one's head has its sender.
    mesh_sender_t *sender = self->last_sender;
    if (!sender || (!self->memo.repeated && strcmp(self->last_sender_id, header->sender) != 0))
        sender = (mesh_sender_t *)zhashx_lookup(self->senders, header->sender);
    if (!sender) {
        if (zhashx_size(self->senders) >= MAX_TRACKED_SENDERS) {
            self->last_sender = NULL;
            return;
        }
        sender = (mesh_sender_t *)calloc(1, sizeof(mesh_sender_t));
        assert(sender);
        zhashx_insert(self->senders, header->sender, sender);
    }
    uint64_t *next;
    if (header->kind == ZC_KIND_PUBLIC)
        next = &sender->next_public;
    else if (header->kind == ZC_KIND_GROUP) {
        if (!sender->next_group) sender->next_group = s_hash_new(s_free);
        next = (uint64_t *)zhashx_lookup(sender->next_group, group);
        if (!next) {
            next = (uint64_t *)calloc(1, sizeof(uint64_t));
            assert(next);
            zhashx_insert(sender->next_group, group, next);
        }
    } else
        next = &sender->next_private;
    self->stats.lost += s_track(next, header->seq);
    if (sender != self->last_sender) {
        self->last_sender = sender;
        memcpy(self->last_sender_id, header->sender, sizeof self->last_sender_id);
    }
}

//  Reads one message from a data socket without waiting: on the ROUTER the
//  routing id into self->routing_id first, then the frame into
//  self->msg.payload, where it stays, uncopied, until the next read (libzmq
//  releases the previous frame as it reads). Frames past those are read and
//  discarded. Returns the number of frames (3 for any more), 0 if nothing
//  was waiting, -1 on interruption.
static int s_read(zc_mesh_t *self, int which)
{
    void *socket = which == SOCK_ROUTER ? self->router_handle : self->sub_handle;
    zmq_msg_t *first = which == SOCK_ROUTER ? &self->routing_id : &self->msg.payload;
    if (zmq_msg_recv(first, socket, ZMQ_DONTWAIT) < 0) return zmq_errno() == EAGAIN ? 0 : -1;
    int frames = 1;
    if (!zmq_msg_more(first)) return frames;
    if (which == SOCK_ROUTER) {
        if (zmq_msg_recv(&self->msg.payload, socket, 0) < 0) return frames;
        frames++;
        if (!zmq_msg_more(&self->msg.payload)) return frames;
    }
    //  Not this protocol (a message is one frame): the rest is dropped.
    zmq_msg_t extra;
    zmq_msg_init(&extra);
    int more = 1;
    while (more && zmq_msg_recv(&extra, socket, 0) >= 0)
        more = zmq_msg_more(&extra);
    zmq_msg_close(&extra);
    return 3;
}

//  Names where the message being read came from, for a log line: the
//  ROUTER's routing id (whatever the connecting side declared: only visible
//  ASCII is printed, so that it cannot forge log lines), or "unknown".
static void s_source(zc_mesh_t *self, int router, char source[ZC_NAME_MAX + 1])
{
    if (!router) {
        snprintf(source, ZC_NAME_MAX + 1, "unknown");
        return;
    }
    size_t len = zmq_msg_size(&self->routing_id);
    const uint8_t *id = (const uint8_t *)zmq_msg_data(&self->routing_id);
    size_t n = (size_t)snprintf(source, ZC_NAME_MAX + 1, "routing id ");
    for (size_t i = 0; i < len && i < 64; i++)
        source[n++] = id[i] > 0x20 && id[i] < 0x7f ? (char)id[i] : '?';
    source[n] = 0;
}

//  Counts a dropped message in *counter and reports it once per source.
//  Returns 0 (not delivered).
static int s_drop(zc_mesh_t *self, int router, uint64_t *counter, const char *what)
{
    (*counter)++;
    char source[ZC_NAME_MAX + 1];
    s_source(self, router, source);
    s_report(self, source, what);
    return 0;
}

static const char *s_kind_name(int kind)
{
    static const char *names[] = {"?", "public", "group", "private", "request", "reply"};
    return kind >= 1 && kind <= 5 ? names[kind] : names[0];
}

//  Counts a delivered message.
static void s_count(zc_mesh_t *self, int kind, size_t size)
{
    switch (kind) {
    case ZC_KIND_PUBLIC:
        self->stats.recv_public++;
        break;
    case ZC_KIND_GROUP:
        self->stats.recv_group++;
        break;
    case ZC_KIND_PRIVATE:
        self->stats.recv_private++;
        break;
    case ZC_KIND_REQUEST:
        self->stats.recv_request++;
        break;
    default:
        self->stats.recv_reply++;
        break;
    }
    self->stats.bytes_received += size;
}

//  Returns 1 if the ROUTER's message came from the DEALER of sender: its
//  routing id is the sender's node id.
static int s_routed_from(zc_mesh_t *self, const char *sender)
{
    size_t len = zmq_msg_size(&self->routing_id);
    return len == strlen(sender) && memcmp(zmq_msg_data(&self->routing_id), sender, len) == 0;
}

static int s_batch_open(zc_mesh_t *self, int router, int kind, const uint8_t *data, size_t size);

//  Drops the message in self->msg, whose header is of a protocol version
//  this node does not read, and reports it once per source. Returns 0.
static int s_drop_version(zc_mesh_t *self, int router)
{
    const zc_header_t *header = &self->msg.header;
    self->stats.bad_version++;
    char what[64], source[ZC_NAME_MAX + 1];
    snprintf(what, sizeof what, "a message of protocol version %d", header->version);
    //  On the ROUTER the connection is known; a header's sender is a claim.
    s_source(self, router, source);
    s_report(self, !router && *header->sender ? header->sender : source, what);
    return 0;
}

//  Drops the message in self->msg, larger than this node takes, and
//  reports it once per sender. Returns 0.
static int s_drop_oversized(zc_mesh_t *self)
{
    const zc_msg_t *msg = &self->msg;
    self->stats.oversized++;
    char what[96];
    snprintf(what, sizeof what, "a %zu-byte %s message (limit %zu)", msg->size,
             s_kind_name(msg->header.kind), self->max_msg_size);
    s_report(self, msg->header.sender, what);
    self->memo.len = 0; //  the handler cache is not this head's
    return 0;
}

//  Judges one message (a header, then its payload, up to end) read from
//  the ROUTER (router 1) or from the SUB under a topic of kind, as
//  section 9 does from the header on, and fills self->msg. batch_sender is
//  the batch's sender for a message inside a batch frame (which must be
//  its sender too), else NULL: then a header of version 2 opens a batch
//  frame (docs/PROTOCOL.md section 8.1). Returns 1 to deliver, 0 if
//  dropped (and counted).
static int s_judge(zc_mesh_t *self, int router, int kind, const uint8_t *data, const uint8_t *end,
                   const char *batch_sender)
{
    zc_msg_t *msg = &self->msg;
    size_t left = (size_t)(end - data), used = 0;
    int rc = zc_wire_header_decode_next(data, left, &msg->header, &self->memo, &used);
    const zc_header_t *header = &msg->header;
    if (rc == ZC_WIRE_VERSION_BAD && !batch_sender && header->version == ZC_WIRE_BATCH_VERSION)
        return s_batch_open(self, router, kind, data, left);
    if (rc == ZC_WIRE_VERSION_BAD) return s_drop_version(self, router);
    int kind_ok = router ? header->kind >= ZC_KIND_PRIVATE : header->kind == kind;
    //  On the ROUTER, the routing id is the sender's DEALER identity: a
    //  header that names another sender is spoofed. In a batch, every
    //  message is the batch's sender's.
    if (rc == ZC_WIRE_OK && ((router && !s_routed_from(self, header->sender)) ||
                             (batch_sender && strcmp(batch_sender, header->sender) != 0)))
        rc = ZC_WIRE_MALFORMED;
    if (rc != ZC_WIRE_OK || !kind_ok) {
        self->memo.len = 0; //  what the stream caches hold is not this head's
        return s_drop(self, router, &self->stats.malformed, "a message with a malformed header");
    }
    s_sequence(self, header, msg->group);
    msg->data = data + used;
    msg->offset = (size_t)(msg->data - self->frame);
    size_t size = msg->size = left - used;
    if (size > self->max_msg_size) return s_drop_oversized(self);
    s_count(self, header->kind, size);
    return 1;
}

//  Takes the next message of the batch frame being received. Returns 1
//  to deliver it, 0 if it was dropped (and counted).
static int s_batch_take(zc_mesh_t *self)
{
    const uint8_t *message;
    size_t size;
    if (!zc_wire_batch_next(&self->inbatch, &message, &size)) return 0;
    return s_judge(self, self->inbatch_router, self->inbatch_kind, message, message + size,
                   self->inbatch.sender);
}

//  A batch frame at data: checked whole, then its first message taken.
//  The frame stays in self->msg.payload while its messages are taken, one
//  per receive. Returns as s_judge.
static int s_batch_open(zc_mesh_t *self, int router, int kind, const uint8_t *data, size_t size)
{
    if (zc_wire_batch_open(&self->inbatch, data, size) != ZC_WIRE_OK)
        return s_drop(self, router, &self->stats.malformed, "a malformed batch frame");
    if (router && !s_routed_from(self, self->inbatch.sender)) {
        self->inbatch.left = 0;
        return s_drop(self, router, &self->stats.malformed, "a batch frame of another sender");
    }
    self->inbatch_router = router;
    self->inbatch_kind = kind;
    return s_batch_take(self);
}

//  Validates the message s_read read (frames of it) and fills self->msg.
//  Returns 1 to deliver, 0 if dropped (and counted). router is 1 for the
//  ROUTER socket. Nothing is formatted unless the message is dropped.
static int s_accept(zc_mesh_t *self, int router, int frames)
{
    zc_msg_t *msg = &self->msg;
    if (frames != 1 + router)
        return s_drop(self, router, &self->stats.malformed,
                      "a message with the wrong number of frames");
    const uint8_t *frame = self->frame = (const uint8_t *)zmq_msg_data(&msg->payload);
    size_t size = zmq_msg_size(&msg->payload), used = 0;
    int kind = 0;
    msg->group[0] = 0;
    if (!router && zc_wire_topic_decode(frame, size, &kind, msg->group, &used))
        return s_drop(self, router, &self->stats.malformed, "a message with a malformed topic");
    return s_judge(self, router, kind, frame + used, frame + size, NULL);
}

//  Handles one monitor event about the connection to the peer at endpoint.
static void s_monitor_event(zc_mesh_t *self, uint16_t event, uint32_t value, const char *endpoint)
{
    mesh_peer_t *peer = (mesh_peer_t *)zhashx_first(self->peers);
    while (peer && strcmp(peer->pub_endpoint, endpoint) != 0)
        peer = (mesh_peer_t *)zhashx_next(self->peers);
    if (!peer) return;
    char where[ZC_NAME_MAX + 32];
    snprintf(where, sizeof where, "to peer %s", peer->id);
    if (zc_refusals_note(self->refusals, where, event, value)) return;
    char id[ZC_NAME_MAX + 1];
    memcpy(id, peer->id, sizeof id);
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        int back = peer->lost;
        peer->connected = 1;
        peer->lost = 0;
        if (back) zc_log(ZC_LOG_DEBUG, self->id, "connection to peer %s up again", id);
        if (back && self->peer_back_fn) self->peer_back_fn(self, id, self->peer_back_arg);
        return;
    }
    if (!peer->connected) return;
    peer->connected = 0;
    peer->lost = 1;
    self->stats.peers_lost++;
    zc_log(ZC_LOG_DEBUG, self->id, "connection to peer %s dropped", id);
    if (self->peer_lost_fn) self->peer_lost_fn(self, id, self->peer_lost_arg); //  may remove it
}

//  Reads the monitors' events until none is left (so that their file
//  descriptors signal the next one), each naming the endpoint of a peer's
//  PUB. A peer counts as lost only when a connection that was up (its
//  handshake succeeded) drops: events about an earlier connection to the
//  same endpoint (a peer removed and added again) can arrive after the new
//  peer entry exists, and must not count. Failed handshakes are refusals.
static void s_monitor_events(zc_mesh_t *self)
{
    zc_refusals_drain(self->refusals);
    zmq_msg_t event, address;
    zmq_msg_init(&event);
    zmq_msg_init(&address);
    while (1) {
        if (zmq_msg_recv(&event, self->monitor_handle, ZMQ_DONTWAIT) < 0) {
            if (zmq_errno() == EINTR) continue;
            break;
        }
        //  An event is two frames: 6 bytes (event, value), then the endpoint.
        if (!zmq_msg_more(&event) || zmq_msg_recv(&address, self->monitor_handle, 0) < 0 ||
            zmq_msg_size(&event) != 6)
            continue;
        uint16_t id;
        uint32_t value;
        memcpy(&id, zmq_msg_data(&event), sizeof id);
        memcpy(&value, (uint8_t *)zmq_msg_data(&event) + 2, sizeof value);
        char endpoint[ENDPOINT_MAX];
        size_t len = zmq_msg_size(&address);
        len = len < ENDPOINT_MAX - 1 ? len : ENDPOINT_MAX - 1;
        memcpy(endpoint, zmq_msg_data(&address), len);
        endpoint[len] = 0;
        s_monitor_event(self, id, value, endpoint);
    }
    zmq_msg_close(&event);
    zmq_msg_close(&address);
}

//  A socket that has messages is drained up to this many in a row before
//  the other gets a turn: fair under load, and an empty socket is not asked
//  between every two messages of a busy one.
#define RECV_BURST 64

//  Reads the data sockets without waiting until a message is deliverable
//  or both were read empty (drained: from then on their file descriptors
//  say when more comes, and they are not asked again until then). Returns
//  1 with self->msg filled, 0 if both are drained, -1 on interruption.
static int s_recv_nowait(zc_mesh_t *self)
{
    while (1) {
        //  A batch frame's messages come before anything else is read.
        if (self->inbatch.left > 0) {
            if (s_batch_take(self)) return 1;
            continue;
        }
        if (self->burst >= RECV_BURST) {
            //  The other socket's turn: asked even if drained, since its
            //  descriptor is only looked at when this one runs dry.
            self->current = !self->current;
            self->drained[self->current] = 0;
            self->burst = 0;
        }
        int which = self->current;
        if (self->drained[which]) which = !which;
        if (self->drained[which]) return 0;
        int frames = s_read(self, which);
        if (frames < 0) return -1;
        if (frames == 0) {
            self->drained[which] = 1;
            continue;
        }
        if (which != self->current) self->burst = 0;
        self->current = which;
        self->burst++;
        if (s_accept(self, which == SOCK_ROUTER, frames)) return 1;
    }
}

//  Waits up to wait ms (-1 for ever, 0 to look only) for a file descriptor
//  of the mesh to be readable: libzmq signals one when a drained socket has
//  news, or a monitor an event. One poll() system call, where zmq_poll
//  would ask each socket for its events, a system call each, before and
//  after. A data socket whose descriptor fired is read again; fired
//  monitors are read at once. Returns 0, or -1 on interruption.
static int s_wait(zc_mesh_t *self, long wait)
{
    for (int i = 0; i < self->fd_count; i++)
        self->fds[i].revents = 0;
    if (poll(self->fds, (nfds_t)self->fd_count, (int)wait) < 0) return -1;
    for (int i = 0; i < SOCK_DATA; i++)
        if (self->fds[i].revents) self->drained[i] = 0;
    for (int i = SOCK_DATA; i < self->fd_count; i++)
        if (self->fds[i].revents) {
            s_monitor_events(self);
            break;
        }
    return 0;
}

//  Returns the handler for the message in self->msg, or NULL: RPC requests
//  and replies go to the caller. Types come in runs: the last one is kept.
static mesh_handler_t *s_handler(zc_mesh_t *self)
{
    if (self->msg.header.kind > ZC_KIND_PRIVATE || !zhashx_size(self->handlers)) return NULL;
    //  A header that repeats the last one's head has its type.
    if (!(self->memo.repeated && *self->last_type) &&
        strcmp(self->last_type, self->msg.header.type) != 0) {
        self->last_handler = (mesh_handler_t *)zhashx_lookup(self->handlers, self->msg.header.type);
        memcpy(self->last_type, self->msg.header.type, sizeof self->last_type);
    }
    return self->last_handler;
}

zc_msg_t *zc_mesh_recv(zc_mesh_t *self, int timeout_ms)
{
    assert(self && self->started);
    int64_t deadline = 0; //  set on the first wait: a busy receiver never reads the clock
    int looked = 0;       //  the descriptors were looked at since the sockets drained
    //  The caller's report of its poll (zc_mesh_polled) holds for this
    //  receive only: what came after that poll is looked for next time.
    int reported = self->poll_reported;
    self->poll_reported = 0;
    //  The owner's thread is back: what it sent in a burst goes now.
    if (zc_mesh_holding(self)) zc_mesh_flush(self);
    while (1) {
        int rc = s_recv_nowait(self);
        if (rc < 0) {
            errno = EINTR;
            return NULL;
        }
        if (rc > 0) {
            mesh_handler_t *handler = s_handler(self);
            if (!handler) return &self->msg;
            handler->fn(self, &self->msg, handler->arg);
            continue;
        }
        if (timeout_ms > 0 && deadline == 0) deadline = zclock_mono() + timeout_ms;
        long wait = timeout_ms < 0 ? -1 : timeout_ms == 0 ? 0 : (long)(deadline - zclock_mono());
        if (timeout_ms >= 0 && wait <= 0) {
            //  One look without waiting (a caller that polls the descriptors
            //  itself, the monitors) before giving up, unless that caller
            //  said what its poll saw.
            if (looked || (timeout_ms == 0 && reported)) {
                errno = EAGAIN;
                return NULL;
            }
            wait = 0;
        }
        looked = wait == 0;
        if (s_wait(self, wait)) {
            errno = EINTR;
            return NULL;
        }
    }
}

int zc_mesh_pollitems(zc_mesh_t *self, zmq_pollitem_t *items)
{
    assert(self && self->started);
    if (zc_mesh_holding(self)) zc_mesh_flush(self); //  before the caller waits
    self->poll_reported = 0;
    void *sockets[SOCK_DATA] = {self->sub_handle, self->router_handle};
    for (int i = 0; i < self->fd_count; i++) {
        //  A socket read empty signals its descriptor when more comes; one
        //  that may still hold messages is polled as a socket (level).
        if (i < SOCK_DATA && !self->drained[i])
            items[i] = (zmq_pollitem_t){.socket = sockets[i], .events = ZMQ_POLLIN};
        else
            items[i] = (zmq_pollitem_t){.fd = self->fds[i].fd, .events = ZMQ_POLLIN};
    }
    //  Messages of a batch frame wait in memory, where no poll sees them:
    //  the PUB, always writable, makes the caller's poll return at once.
    if (self->inbatch.left > 0)
        items[0] = (zmq_pollitem_t){.socket = self->pub_handle, .events = ZMQ_POLLOUT};
    return self->fd_count;
}

void zc_mesh_polled(zc_mesh_t *self, const zmq_pollitem_t *items, int count)
{
    assert(self && self->started && count <= self->fd_count);
    int monitors = 0;
    for (int i = 0; i < count; i++)
        if (items[i].revents) {
            if (i < SOCK_DATA)
                self->drained[i] = 0;
            else
                monitors = 1;
        }
    if (monitors) s_monitor_events(self);
    self->poll_reported = 1;
}

uint64_t zc_mesh_received(zc_mesh_t *self)
{
    assert(self);
    const zc_mesh_stats_t *s = &self->stats;
    return s->recv_public + s->recv_group + s->recv_private + s->recv_request + s->recv_reply;
}

void zc_mesh_stats(zc_mesh_t *self, zc_mesh_stats_t *stats)
{
    assert(self && stats);
    if (self->started) {
        zc_refusals_drain(self->refusals);
        self->stats.refused = zc_refusals_count(self->refusals);
    }
    *stats = self->stats;
}
