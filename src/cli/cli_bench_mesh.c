/*  zcluster bench: publish, shout and whisper, each next to raw libzmq.

    Children are the receivers (publish, shout) or the echoing peer
    (whisper); the parent sends. Receivers prove they are subscribed with a
    warm-up message before timing starts, then time from the first to the
    last measured message they received and report "RECEIVED NANOSECONDS"
    (bench_count). The figures are the worst receiver's: its rate of
    delivered messages, and the fraction of those sent that it got (PUB
    drops at the high-water mark, on both sides). Payload byte 0 tells the
    message's role: 'w' warm-up, 'b' measured, 'p' ping to echo; with
    --rate, bytes 1..8 carry the intended send time (cli_bench_rate.c).

    The raw baselines are the simplest correct programs for each pattern:
    one PUB sending each payload with zmq_send to SUBs that zmq_msg_recv
    (with a topic frame prefix for shout), and a DEALER sending to a ROUTER
    (whisper), which echoes pings back to the DEALER's routing id.
*/
#include "cli_bench.h"
#include "zcluster.h"

#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RTT_SAMPLES_MAX 20000

//  One side of a scenario: a mesh (project) or a raw socket (baseline).
typedef struct {
    zc_mesh_t *mesh;
    zsock_t *sock;
    void *raw;
    zmq_msg_t frame;
    zmq_msg_t identity;      //  the sender's routing id (raw ROUTER)
    size_t skip;             //  topic bytes before the payload (raw with a topic)
    int router;              //  raw ROUTER: messages start with the sender's id
    int timeout_ms;          //  raw: the receive timeout set now
    zc_security_t *security; //  raw, with CURVE on (bench_secure)
} s_end_t;

//  Opens end: a raw socket of type, or (type 0) a started mesh node named
//  id. With endpoints (cap bytes), a raw socket binds to a loopback port,
//  and endpoints gets "PUB ROUTER" for peers to reach it (a raw socket's
//  endpoint twice). Returns 0 or -1.
static int s_end_open(s_end_t *end, int type, const char *id, char *endpoints, size_t cap)
{
    memset(end, 0, sizeof *end);
    zmq_msg_init(&end->frame);
    zmq_msg_init(&end->identity);
    end->timeout_ms = -2; //  not set yet (-1 is libzmq's "for ever")
    if (!type) {
        end->mesh = zc_mesh_new(id);
        zc_mesh_set_hwm(end->mesh, BENCH_HWM);
        if (zc_mesh_start(end->mesh)) return -1;
        if (endpoints)
            snprintf(endpoints, cap, "%s %s", zc_mesh_pub_endpoint(end->mesh),
                     zc_mesh_router_endpoint(end->mesh));
        return 0;
    }
    end->sock = zsock_new(type);
    end->raw = zsock_resolve(end->sock);
    int hwm = BENCH_HWM;
    zmq_setsockopt(end->raw, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(end->raw, ZMQ_RCVHWM, &hwm, sizeof hwm);
    end->router = type == ZMQ_ROUTER;
    end->security = bench_secure(end->raw, endpoints != NULL); //  it binds if it has endpoints
    if (!endpoints) return 0;
    zsock_bind(end->sock, "tcp://127.0.0.1:*");
    char *ep = zsock_last_endpoint(end->sock);
    snprintf(endpoints, cap, "%s %s", ep, ep);
    zstr_free(&ep);
    return 0;
}

static void s_end_close(s_end_t *end)
{
    zmq_msg_close(&end->frame);
    zmq_msg_close(&end->identity);
    zc_mesh_destroy(&end->mesh);
    zsock_destroy(&end->sock);
    zc_security_destroy(&end->security);
}

//  Reads a peer's "PUB ROUTER" line from fd. Returns 0 or -1.
static int s_read_endpoints(int fd, char pub[256], char router[256])
{
    char line[512];
    return bench_read_line(fd, line, sizeof line, 10000) == 0 &&
                   sscanf(line, "%255s %255s", pub, router) == 2
               ? 0
               : -1;
}

//  Receives one message; returns its role byte, or 0 on timeout, and the
//  payload in *data (bench_next_fn over an s_end_t). A raw socket's timeout
//  is set only when it changes: the raw receiver does no more per message
//  than the simplest receiving program.
static char s_recv(void *arg, int timeout_ms, const char **data)
{
    s_end_t *end = (s_end_t *)arg;
    *data = NULL;
    if (end->mesh) {
        zc_msg_t *msg = zc_mesh_recv(end->mesh, timeout_ms);
        if (!msg || !zc_msg_size(msg)) return 0;
        *data = (const char *)zc_msg_data(msg);
        return **data;
    }
    if (timeout_ms != end->timeout_ms) {
        zmq_setsockopt(end->raw, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
        end->timeout_ms = timeout_ms;
    }
    if (end->router && zmq_msg_recv(&end->identity, end->raw, 0) < 0) return 0;
    if (zmq_msg_recv(&end->frame, end->raw, 0) < 0 || zmq_msg_size(&end->frame) <= end->skip)
        return 0;
    *data = (const char *)zmq_msg_data(&end->frame) + end->skip;
    return **data;
}

//  The sending side: an end and the payload it sends.
typedef struct {
    s_end_t end;
    char *payload;
    size_t size;
    int group; //  shout (to the group "bench") rather than publish
} s_sender_t;

//  Naps for timeout_ms (bench_wait_fn over the sending mesh, or NULL): a
//  sender has nothing to take. A mesh that batches is flushed first, as an
//  application that waits outside the mesh does (docs/PROTOCOL.md 8.1).
static void s_nap(void *arg, int timeout_ms)
{
    if (arg) zc_mesh_flush((zc_mesh_t *)arg);
    if (timeout_ms > 0) zclock_sleep(timeout_ms);
}

//  Sends the payload with the role byte role, n times, through send: at
//  once, or with --rate each at its intended time, stamped with it.
static void s_send_n(s_sender_t *sender, const bench_options_t *opt, bench_send_fn *send, char role,
                     long n)
{
    sender->payload[0] = role;
    int64_t start = bench_now_ns();
    for (long i = 0; i < n; i++) {
        if (opt->rate > 0) {
            int64_t intended = bench_intended(opt, start, i);
            bench_pace(intended, s_nap, sender->end.mesh);
            bench_stamp(sender->payload, intended);
        }
        send(sender);
    }
    //  With --batch, the end of the burst: what the node holds goes now.
    if (sender->end.mesh) zc_mesh_flush(sender->end.mesh);
}

//  --------------------------------------------------------------------------
//  publish and shout

typedef struct {
    int raw, group;
} s_pub_args_t;

static int s_pub_receiver(int index, const bench_options_t *opt, int in_fd, int out_fd, void *arg)
{
    s_pub_args_t *args = (s_pub_args_t *)arg;
    char pub[256], router[256], id[32];
    if (s_read_endpoints(in_fd, pub, router)) return 1;
    snprintf(id, sizeof id, "bench-r%d", index);
    s_end_t end;
    if (s_end_open(&end, args->raw ? ZMQ_SUB : 0, id, NULL, 0)) return 1;
    if (args->raw) {
        end.skip = args->group ? 6 : 0; //  "bench\0": an exact topic
        zmq_setsockopt(end.raw, ZMQ_SUBSCRIBE, "bench", end.skip);
        zmq_connect(end.raw, pub);
    } else if (zc_mesh_peer_add(end.mesh, "bench-s", pub, router, NULL) ||
               (args->group && zc_mesh_join(end.mesh, "bench")))
        return 1;
    int rc = bench_count(opt, out_fd, s_recv, &end);
    s_end_close(&end);
    return rc;
}

//  Sends the payload once to every receiver (bench_send_fn over an s_sender_t).
static int s_pub_send(void *arg)
{
    s_sender_t *sender = (s_sender_t *)arg;
    s_end_t *end = &sender->end;
    if (end->mesh) {
        if (sender->group)
            zc_mesh_shout(end->mesh, "bench", "bench", sender->payload, sender->size);
        else
            zc_mesh_publish(end->mesh, "bench", sender->payload, sender->size);
    } else if (sender->group) {
        //  Raw with a topic: one frame, "bench\0" then the payload.
        zmq_msg_t frame;
        zmq_msg_init_size(&frame, 6 + sender->size);
        memcpy(zmq_msg_data(&frame), "bench", 6);
        memcpy((char *)zmq_msg_data(&frame) + 6, sender->payload, sender->size);
        if (zmq_msg_send(&frame, end->raw, 0) < 0) zmq_msg_close(&frame);
    } else
        zmq_send(end->raw, sender->payload, sender->size, 0);
    return 0;
}

static int s_publish_once(const bench_options_t *opt, int raw, int group, bench_result_t *result)
{
    s_pub_args_t args = {raw, group};
    bench_children_t children;
    if (bench_spawn(&children, opt->nodes, s_pub_receiver, opt, &args)) return -1;
    s_sender_t sender = {.size = opt->size, .group = group};
    char endpoints[512] = "- -"; //  if the sender cannot open: the children give up
    int rc = s_end_open(&sender.end, raw ? ZMQ_PUB : 0, "bench-s", endpoints, sizeof endpoints);
    if (rc == 0 && !raw) zc_mesh_set_batch(sender.end.mesh, opt->batch);
    for (int i = 0; i < children.count; i++)
        bench_write_line(children.to[i], "%s", endpoints);
    sender.payload = (char *)calloc(1, opt->size);
    sender.payload[0] = 'w';
    if (rc == 0) rc = bench_warm_up(&children, s_pub_send, &sender);
    if (rc == 0) s_send_n(&sender, opt, s_pub_send, 'b', opt->count);
    if (rc == 0) bench_collect(&children, result);
    result->sent = opt->count;
    free(sender.payload);
    s_end_close(&sender.end);
    bench_reap(&children, rc != 0);
    return rc == 0 && result->received >= 0 ? 0 : -1;
}

int bench_publish(const bench_options_t *opt, int group, bench_result_t *project,
                  bench_result_t *baseline)
{
    return s_publish_once(opt, 1, group, baseline) || s_publish_once(opt, 0, group, project) ? -1
                                                                                             : 0;
}

//  --------------------------------------------------------------------------
//  whisper: one way, then round trip

static int s_echo_peer(int index, const bench_options_t *opt, int in_fd, int out_fd, void *arg)
{
    int raw = *(int *)arg;
    char pub[256], router[256], endpoints[512];
    if (s_read_endpoints(in_fd, pub, router)) return 1;
    s_end_t end;
    if (s_end_open(&end, raw ? ZMQ_ROUTER : 0, "bench-r", endpoints, sizeof endpoints) ||
        (!raw && zc_mesh_peer_add(end.mesh, "bench-s", pub, router, NULL)))
        return 1;
    bench_write_line(out_fd, "%s", endpoints);
    int rc = bench_count(opt, out_fd, s_recv, &end);
    //  Then echo pings until the parent is done.
    char c;
    const char *data;
    while (rc == 0 && (c = s_recv(&end, 10000, &data)) != 0) {
        if (c != 'p') continue;
        if (end.mesh)
            zc_mesh_whisper(end.mesh, "bench-s", "bench", "p", 1);
        else {
            zmq_msg_send(&end.identity, end.raw, ZMQ_SNDMORE);
            zmq_send(end.raw, "p", 1, 0);
        }
    }
    s_end_close(&end);
    return rc;
}

//  Sends the payload to the peer (bench_send_fn over an s_sender_t).
static int s_whisper_send(void *arg)
{
    s_sender_t *sender = (s_sender_t *)arg;
    s_end_t *end = &sender->end;
    if (end->mesh) {
        while (zc_mesh_whisper(end->mesh, "bench-r", "bench", sender->payload, sender->size) != 0 &&
               errno == EAGAIN)
            zc_mesh_recv(end->mesh, 1);
    } else
        zmq_send(end->raw, sender->payload, sender->size, 0);
    return 0;
}

//  Round trips, one at a time, up to RTT_SAMPLES_MAX: p50/p99 into rtt.
//  Returns the number done.
static long s_round_trips(s_sender_t *sender, long count, bench_result_t *rtt)
{
    long samples = count < RTT_SAMPLES_MAX ? count : RTT_SAMPLES_MAX;
    int64_t *rtts = (int64_t *)calloc((size_t)samples, sizeof(int64_t));
    long done = 0;
    sender->payload[0] = 'p';
    for (; done < samples; done++) {
        int64_t start = bench_now_ns();
        s_whisper_send(sender);
        const char *data;
        if (s_recv(&sender->end, 5000, &data) != 'p') break;
        rtts[done] = bench_now_ns() - start;
    }
    rtt->received = done;
    rtt->rate = 0; //  a latency figure: compared by p50
    if (done) bench_percentiles(rtts, done, rtt);
    free(rtts);
    return done;
}

//  Connects the sender to the echoing child, whose endpoints it reads.
//  Returns 0 or -1.
static int s_whisper_connect(s_sender_t *sender, bench_children_t *children)
{
    char pub[256], router[256];
    if (s_read_endpoints(children->from[0], pub, router)) return -1;
    return sender->end.mesh ? zc_mesh_peer_add(sender->end.mesh, "bench-r", pub, router, NULL)
                            : zmq_connect(sender->end.raw, router);
}

static int s_whisper_once(const bench_options_t *opt, int raw, bench_result_t *one_way,
                          bench_result_t *rtt)
{
    bench_children_t children;
    bench_options_t single = *opt;
    single.nodes = 1;
    if (bench_spawn(&children, 1, s_echo_peer, &single, &raw)) return -1;
    s_sender_t sender = {.size = opt->size};
    char endpoints[512] = "- -";
    int rc = s_end_open(&sender.end, raw ? ZMQ_DEALER : 0, "bench-s", raw ? NULL : endpoints,
                        sizeof endpoints);
    if (raw) zsock_set_identity(sender.end.sock, "bench-s");
    bench_write_line(children.to[0], "%s", endpoints);
    if (rc == 0) rc = s_whisper_connect(&sender, &children);
    //  The echoing peer is a zcluster mesh: it reads batch frames.
    if (rc == 0 && !raw && opt->batch) {
        zc_mesh_set_batch(sender.end.mesh, 1);
        rc = zc_mesh_peer_set_wire(sender.end.mesh, "bench-r", ZC_WIRE_BATCH_VERSION);
    }
    sender.payload = (char *)calloc(1, opt->size);
    sender.payload[0] = 'w';
    if (rc == 0) rc = bench_warm_up(&children, s_whisper_send, &sender);
    if (rc == 0) s_send_n(&sender, opt, s_whisper_send, 'b', opt->count);
    if (rc == 0) bench_collect(&children, one_way);
    one_way->sent = opt->count;
    //  With --rate, the one-way latency is the figure: no round trips.
    long samples = opt->rate > 0 ? 0 : opt->count < RTT_SAMPLES_MAX ? opt->count : RTT_SAMPLES_MAX;
    long done = rc == 0 && samples ? s_round_trips(&sender, opt->count, rtt) : 0;
    free(sender.payload);
    s_end_close(&sender.end);
    bench_reap(&children, 1);
    return rc == 0 && one_way->received >= 0 && done == samples ? 0 : -1;
}

int bench_whisper(const bench_options_t *opt, bench_result_t results[4])
{
    return s_whisper_once(opt, 1, &results[1], &results[3]) ||
                   s_whisper_once(opt, 0, &results[0], &results[2])
               ? -1
               : 0;
}
