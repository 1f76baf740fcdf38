/*  test_mesh_badinput — hostile input from the network never hurts a node.

    A `zcluster node` process (the victim) and, in this process, raw libzmq
    sockets playing an evil peer: an XPUB and a ROUTER that the victim is
    told about with `peer evil ...`, and a DEALER with routing id "evil"
    connected to the victim's ROUTER. The evil peer writes its frames by
    hand, one frame per message as the protocol says (topic + header +
    payload on the PUB, header + payload on the DEALER), and sends garbage,
    wrong frame counts (the multipart layout among them), frames that end
    inside the header, foreign versions, oversized payloads, spoofed
    senders, kinds on the wrong path, groups the victim has not joined,
    sequence gaps and restarts.

    After each case the test sends a good message on the same connection
    and waits for the victim to print it: ZeroMQ keeps order per connection,
    so by then the victim has processed the bad input, and `stats` must show
    exactly the expected counters moved (and no other). At the end the
    victim's stderr, redirected to a file, must name each bad source once,
    not once per message, and hold no sanitizer report.

    The XPUB is in manual mode and forwards everything to the victim, so the
    victim's own SUB filtering is what keeps unjoined groups out, as it
    would be against a peer that ignores subscriptions.
*/
#include "testkit.h"
#include "zc_wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_MSG_SIZE 1000
#define TIMEOUT_MS   5000

//  The counters a case may move; every other one must stay put.
static const char *s_keys[] = {"malformed",    "bad_version", "oversized",    "lost",
                               "recv_public",  "recv_group",  "recv_private", "peers_lost",
                               "send_dropped", "no_route"};
#define KEY_COUNT (sizeof s_keys / sizeof s_keys[0])

typedef struct {
    long long value[KEY_COUNT];
} s_counters_t;

typedef struct {
    void *ctx;
    void *pub;    //  XPUB, manual: forwards every message to the victim
    void *router; //  the victim's DEALER connects here
    void *dealer; //  routing id "evil", connected to the victim's ROUTER
    void *dealer_monitor;
    char pub_endpoint[128], router_endpoint[128];
    uint64_t public_seq, group_seq, private_seq; //  last numbers sent per stream
    int good;                                    //  good messages sent, for unique texts
} s_evil_t;

static zt_proc_t *s_victim;

//  --------------------------------------------------------------------------
//  Sending raw frames

//  Sends count frames as one multipart message.
static int s_send_frames(void *socket, const void **frames, const size_t *sizes, int count)
{
    for (int i = 0; i < count; i++)
        if (zmq_send(socket, frames[i], sizes[i], i + 1 < count ? ZMQ_SNDMORE : 0) < 0) return -1;
    return 0;
}

//  Encodes a header with any version (the codec writes what it is given).
static size_t s_header(uint8_t *buf, int version, int kind, const char *type, const char *sender,
                       uint64_t seq, uint64_t corr)
{
    zc_header_t h = {.version = (uint8_t)version, .kind = (uint8_t)kind, .seq = seq, .corr = corr};
    snprintf(h.type, sizeof h.type, "%s", type);
    snprintf(h.sender, sizeof h.sender, "%s", sender);
    int len = zc_wire_header_encode(&h, buf, ZC_WIRE_HEADER_MAX);
    ZT_CHECK(len > 0);
    return len > 0 ? (size_t)len : 0;
}

//  Sends topic, header and payload joined into one frame.
static void s_send_joined(void *socket, const void *topic, size_t topic_size, const void *header,
                          size_t header_size, const void *payload, size_t payload_size)
{
    size_t size = topic_size + header_size + payload_size;
    uint8_t *frame = (uint8_t *)malloc(size ? size : 1);
    if (topic_size) memcpy(frame, topic, topic_size);
    if (header_size) memcpy(frame + topic_size, header, header_size);
    if (payload_size) memcpy(frame + topic_size + header_size, payload, payload_size);
    ZT_EQ(zmq_send(socket, frame, size, 0), (int)size);
    free(frame);
}

//  Sends topic + header + payload as one frame on the evil PUB.
static void s_pub_send(s_evil_t *evil, const void *topic, size_t topic_size, const void *header,
                       size_t header_size, const void *payload, size_t payload_size)
{
    s_send_joined(evil->pub, topic, topic_size, header, header_size, payload, payload_size);
}

//  Sends header + payload as one frame on the evil DEALER.
static void s_dealer_send(s_evil_t *evil, const void *header, size_t header_size,
                          const void *payload, size_t payload_size)
{
    s_send_joined(evil->dealer, NULL, 0, header, header_size, payload, payload_size);
}

//  --------------------------------------------------------------------------
//  What the victim prints

//  Waits for the next `msg` line and checks it is exactly expected.
static int s_expect_msg(const char *expected)
{
    const char *line = zt_proc_expect(s_victim, "msg ", TIMEOUT_MS);
    if (!ZT_CHECK(line && strcmp(line, expected) == 0)) {
        fprintf(stderr, "  expected: %s\n  got:      %s\n", expected, line ? line : "(nothing)");
        return -1;
    }
    return 0;
}

static void s_read_counters(s_counters_t *counters)
{
    ZT_EQ(zt_proc_send(s_victim, "stats"), 0);
    const char *line = zt_proc_expect(s_victim, "stats ", TIMEOUT_MS);
    ZT_CHECK(line != NULL);
    for (size_t i = 0; i < KEY_COUNT; i++)
        counters->value[i] = line ? zt_field(line, s_keys[i]) : -1;
}

//  Checks that since before, exactly the counters named in moved ("key=N
//  ...") went up by N and every other counter stayed.
static void s_check_moved(const char *name, const s_counters_t *before, const char *moved)
{
    s_counters_t after;
    s_read_counters(&after);
    for (size_t i = 0; i < KEY_COUNT; i++) {
        long long want = zt_field(moved, s_keys[i]);
        want = want < 0 ? 0 : want;
        long long got = after.value[i] - before->value[i];
        if (!ZT_EQ(got, want))
            fprintf(stderr, "  case '%s': %s moved by %lld, expected %lld\n", name, s_keys[i], got,
                    want);
    }
}

//  Waits until counter key reaches at least value; returns 0, or -1 on timeout.
static int s_wait_counter(const char *key, long long value)
{
    int64_t deadline = zt_now_ms() + TIMEOUT_MS;
    while (zt_now_ms() < deadline) {
        zt_proc_send(s_victim, "stats");
        const char *line = zt_proc_expect(s_victim, "stats ", TIMEOUT_MS);
        if (line && zt_field(line, key) >= value) return 0;
        usleep(20000);
    }
    return -1;
}

//  Counts lines of the log that begin with text.
static int s_log_count_start(const char *log, const char *text)
{
    int count = 0;
    for (const char *line = log; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, text, strlen(text)) == 0) count++;
    return count;
}

//  --------------------------------------------------------------------------
//  Good messages, one per stream, each checked to arrive

static void s_good_public(s_evil_t *evil)
{
    uint8_t header[ZC_WIRE_HEADER_MAX];
    char text[32], expected[128];
    uint64_t seq = ++evil->public_seq;
    snprintf(text, sizeof text, "good-%d", ++evil->good);
    size_t len = s_header(header, 1, 1, "good", "evil", seq, 0);
    s_pub_send(evil, "P", 1, header, len, text, strlen(text));
    snprintf(expected, sizeof expected, "msg public evil - good %" PRIu64 " %s", seq, text);
    s_expect_msg(expected);
}

static void s_good_group(s_evil_t *evil)
{
    uint8_t header[ZC_WIRE_HEADER_MAX];
    char text[32], expected[128];
    uint64_t seq = ++evil->group_seq;
    snprintf(text, sizeof text, "good-%d", ++evil->good);
    size_t len = s_header(header, 1, 2, "good", "evil", seq, 0);
    s_pub_send(evil, "Gg1", 4, header, len, text, strlen(text));
    snprintf(expected, sizeof expected, "msg group evil g1 good %" PRIu64 " %s", seq, text);
    s_expect_msg(expected);
}

static void s_good_private(s_evil_t *evil)
{
    uint8_t header[ZC_WIRE_HEADER_MAX];
    char text[32], expected[128];
    uint64_t seq = ++evil->private_seq;
    snprintf(text, sizeof text, "good-%d", ++evil->good);
    size_t len = s_header(header, 1, 3, "good", "evil", seq, 0);
    s_dealer_send(evil, header, len, text, strlen(text));
    snprintf(expected, sizeof expected, "msg private evil - good %" PRIu64 " %s", seq, text);
    s_expect_msg(expected);
}

//  --------------------------------------------------------------------------
//  Setting up the victim and the evil peer

static char s_log_path[64];

static int s_start_victim(char *pub, char *router)
{
    snprintf(s_log_path, sizeof s_log_path, "/tmp/zc-badinput-XXXXXX");
    int fd = mkstemp(s_log_path);
    if (fd < 0) return -1;
    close(fd);
    //  stderr goes to a file so the test can count what the victim logged.
    char env_log[128];
    snprintf(env_log, sizeof env_log, "ZT_VICTIM_LOG=%s", s_log_path);
    char *env[] = {env_log, NULL};
    char *argv[] = {"sh", "-c",
                    "exec \"${ZC_CLI:-zcluster}\" node --id victim --max-msg-size 1000 "
                    "2>\"$ZT_VICTIM_LOG\"",
                    NULL};
    s_victim = zt_proc_start(argv, env);
    const char *ready = s_victim ? zt_proc_expect(s_victim, "ready ", TIMEOUT_MS) : NULL;
    return ready && sscanf(ready, "ready victim %127s %127s", pub, router) == 2 ? 0 : -1;
}

static int s_bind(void *socket, char *endpoint)
{
    size_t size = 128;
    if (zmq_bind(socket, "tcp://127.0.0.1:*") != 0) return -1;
    return zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, endpoint, &size);
}

//  Waits up to TIMEOUT_MS for a monitor event of this kind.
static int s_wait_event(void *monitor, int event)
{
    int64_t deadline = zt_now_ms() + TIMEOUT_MS;
    while (zt_now_ms() < deadline) {
        zmq_pollitem_t item = {monitor, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 100) <= 0) continue;
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        int got = -1;
        if (zmq_msg_recv(&frame, monitor, 0) >= 6) {
            uint16_t id;
            memcpy(&id, zmq_msg_data(&frame), sizeof id);
            got = id;
        }
        while (zmq_msg_more(&frame))
            zmq_msg_recv(&frame, monitor, 0);
        zmq_msg_close(&frame);
        if (got == event) return 0;
    }
    return -1;
}

static int s_evil_start(s_evil_t *evil, const char *victim_router)
{
    evil->ctx = zmq_ctx_new();
    evil->pub = zmq_socket(evil->ctx, ZMQ_XPUB);
    evil->router = zmq_socket(evil->ctx, ZMQ_ROUTER);
    evil->dealer = zmq_socket(evil->ctx, ZMQ_DEALER);
    int zero = 0, one = 1, timeout = TIMEOUT_MS;
    void *sockets[3] = {evil->pub, evil->router, evil->dealer};
    for (int i = 0; i < 3; i++)
        zmq_setsockopt(sockets[i], ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(evil->pub, ZMQ_XPUB_MANUAL, &one, sizeof one);
    zmq_setsockopt(evil->pub, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(evil->dealer, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(evil->pub, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(evil->dealer, ZMQ_ROUTING_ID, "evil", 4);
    zmq_socket_monitor(evil->dealer, "inproc://evil-dealer",
                       ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    evil->dealer_monitor = zmq_socket(evil->ctx, ZMQ_PAIR);
    zmq_setsockopt(evil->dealer_monitor, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(evil->dealer_monitor, "inproc://evil-dealer") ||
        s_bind(evil->pub, evil->pub_endpoint) || s_bind(evil->router, evil->router_endpoint) ||
        zmq_connect(evil->dealer, victim_router))
        return -1;
    return s_wait_event(evil->dealer_monitor, ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
}

//  Waits for the victim's SUB to subscribe to "P", then lets everything
//  through to it whatever it subscribes to.
static int s_evil_open_pub(s_evil_t *evil)
{
    char sub[16];
    int size = zmq_recv(evil->pub, sub, sizeof sub, 0);
    if (size != 2 || sub[0] != 1 || sub[1] != 'P') return -1;
    return zmq_setsockopt(evil->pub, ZMQ_SUBSCRIBE, "", 0);
}

static void s_evil_stop(s_evil_t *evil)
{
    zmq_socket_monitor(evil->dealer, NULL, 0);
    zmq_close(evil->dealer_monitor);
    zmq_close(evil->dealer);
    zmq_close(evil->router);
    zmq_close(evil->pub);
    zmq_ctx_term(evil->ctx);
}

//  --------------------------------------------------------------------------
//  The victim's log

//  Counts lines of the log containing text.
static int s_log_count(const char *log, const char *text)
{
    int count = 0;
    for (const char *line = log; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        const char *hit = strstr(line, text);
        if (hit && hit < line + len) count++;
        line = eol ? eol + 1 : NULL;
    }
    return count;
}

static char *s_read_log(void)
{
    FILE *file = fopen(s_log_path, "rb");
    if (!file) return NULL;
    char *text = (char *)calloc(1, 1 << 20);
    size_t got = fread(text, 1, (1 << 20) - 1, file);
    text[got] = 0;
    fclose(file);
    return text;
}

//  --------------------------------------------------------------------------

int main(void)
{
    s_evil_t evil = {0};
    s_counters_t before;
    uint8_t header[ZC_WIRE_HEADER_MAX];
    size_t len;
    char victim_pub[128], victim_router[128];
    char long_group[ZC_NAME_MAX + 1], long_type[ZC_NAME_MAX + 1];
    memset(long_group, 'g', ZC_NAME_MAX);
    long_group[ZC_NAME_MAX] = 0;
    memset(long_type, 't', ZC_NAME_MAX);
    long_type[ZC_NAME_MAX] = 0;

    zt_section("a victim node and an evil peer of raw sockets");
    if (!ZT_EQ(s_start_victim(victim_pub, victim_router), 0)) {
        zt_proc_destroy(&s_victim);
        return zt_done();
    }
    ZT_EQ(s_evil_start(&evil, victim_router), 0);
    ZT_EQ(zt_proc_command(s_victim, "peer evil %s %s", evil.pub_endpoint, evil.router_endpoint), 0);
    ZT_EQ(s_evil_open_pub(&evil), 0);
    ZT_EQ(zt_proc_command(s_victim, "join g1"), 0);

    zt_section("good messages set each stream's baseline");
    s_read_counters(&before);
    s_good_public(&evil);
    evil.group_seq = 99; //  a first number other than 1 is a baseline, not a gap
    s_good_group(&evil);
    s_good_private(&evil);
    s_check_moved("baselines", &before, "recv_public=1 recv_group=1 recv_private=1");

    zt_section("garbage on the SUB path");
    s_read_counters(&before);
    for (int i = 0; i < 3; i++) {
        uint8_t garbage[64];
        for (size_t b = 0; b < sizeof garbage; b++)
            garbage[b] = (uint8_t)(b * 37 + i * 101 + 5);
        s_pub_send(&evil, "P", 1, garbage, sizeof garbage - (size_t)i * 20, "x", 1);
    }
    len = s_header(header, 1, 1, "t", "evil", evil.public_seq + 1, 0);
    s_pub_send(&evil, "Pjunk", 5, header, len, "x", 1);    //  a topic that is not "P"
    s_pub_send(&evil, "\x00\x01", 2, header, len, "x", 1); //  matches no subscription
    s_pub_send(&evil, "Q", 1, header, len, "x", 1);
    s_good_public(&evil);
    s_check_moved("garbage on the SUB", &before, "malformed=4 recv_public=1");

    zt_section("wrong frame counts on the SUB path: 2, 3 (the multipart layout), 5");
    s_read_counters(&before);
    {
        //  Every byte a good message needs, in the wrong number of frames.
        uint8_t joined[1 + ZC_WIRE_HEADER_MAX];
        joined[0] = 'P';
        memcpy(joined + 1, header, len);
        const void *two[2] = {joined, "x"};
        size_t two_sizes[2] = {1 + len, 1};
        ZT_EQ(s_send_frames(evil.pub, two, two_sizes, 2), 0);
        const void *frames[5] = {"P", header, "x", "y", "z"};
        size_t sizes[5] = {1, len, 1, 1, 1};
        ZT_EQ(s_send_frames(evil.pub, frames, sizes, 3), 0);
        ZT_EQ(s_send_frames(evil.pub, frames, sizes, 5), 0);
    }
    s_good_public(&evil);
    s_check_moved("frame counts on the SUB", &before, "malformed=3 recv_public=1");

    zt_section("frames that end inside the header on the SUB path");
    s_read_counters(&before);
    len = s_header(header, 1, 1, "truncated", "evil", evil.public_seq + 1, 0);
    s_pub_send(&evil, "P", 1, header, 1, NULL, 0);
    s_pub_send(&evil, "P", 1, header, len / 2, NULL, 0);
    s_pub_send(&evil, "P", 1, header, len - 1, NULL, 0); //  corr missing
    s_pub_send(&evil, "P", 1, NULL, 0, NULL, 0);         //  a topic alone
    s_pub_send(&evil, "Gg1", 4, NULL, 0, NULL, 0);
    s_good_public(&evil);
    s_check_moved("truncated on the SUB", &before, "malformed=5 recv_public=1");

    zt_section("foreign versions on the SUB path are bad_version, not malformed");
    s_read_counters(&before);
    len = s_header(header, 3, 1, "future", "evil", evil.public_seq + 1, 0);
    s_pub_send(&evil, "P", 1, header, len, "x", 1);
    len = s_header(header, 0, 1, "past", "evil", evil.public_seq + 1, 0);
    s_pub_send(&evil, "P", 1, header, len, "x", 1);
    s_pub_send(&evil, "P", 1, "\x91\xcc\xff", 3, "x", 1); //  [255]: just a version
    s_good_public(&evil);
    s_check_moved("versions on the SUB", &before, "bad_version=3 recv_public=1");

    zt_section("kinds that do not match the topic");
    s_read_counters(&before);
    len = s_header(header, 1, 2, "t", "evil", evil.public_seq + 1, 0);
    s_pub_send(&evil, "P", 1, header, len, "x", 1); //  group header, public topic
    len = s_header(header, 1, 3, "t", "evil", evil.public_seq + 1, 0);
    s_pub_send(&evil, "P", 1, header, len, "x", 1); //  private kind on the SUB
    len = s_header(header, 1, 1, "t", "evil", evil.group_seq + 1, 0);
    s_pub_send(&evil, "Gg1", 4, header, len, "x", 1); //  public header, group topic
    s_good_public(&evil);
    s_check_moved("kind mismatch", &before, "malformed=3 recv_public=1");

    zt_section("groups the victim has not joined, and topics posing as g1");
    s_read_counters(&before);
    len = s_header(header, 1, 2, "t", "evil", 1, 0);
    s_pub_send(&evil, "Gg2", 4, header, len, "x", 1);  //  filtered: not even seen
    s_pub_send(&evil, "Gg12", 5, header, len, "x", 1); //  group "g12" is not "g1"
    //  "Gg1" and a header without a 00 byte: no NUL ends the name, and the
    //  subscription "Gg1\0" does not match.
    {
        uint8_t no_nul[ZC_WIRE_HEADER_MAX];
        size_t no_nul_len = s_header(no_nul, 1, 2, "t", "evil", 1, 1);
        ZT_CHECK(memchr(no_nul, 0, no_nul_len) == NULL);
        s_pub_send(&evil, "Gg1", 3, no_nul, no_nul_len, "x", 1);
    }
    //  The g1 prefix, then bytes that are not a header: a message to g1
    //  with a malformed header, not a message to some other group.
    s_pub_send(&evil, "Gg1\0x", 6, header, len, "x", 1);
    s_pub_send(&evil, "Gg1\0xyz", 7, header, len, "x", 1);
    s_good_group(&evil);
    s_check_moved("unjoined groups", &before, "malformed=2 recv_group=1");

    zt_section("oversized payloads on the SUB path: counted, sequence kept");
    s_read_counters(&before);
    char *big = (char *)malloc(MAX_MSG_SIZE + 61440);
    memset(big, 'b', MAX_MSG_SIZE + 61440);
    len = s_header(header, 1, 1, "big", "evil", ++evil.public_seq, 0);
    s_pub_send(&evil, "P", 1, header, len, big, MAX_MSG_SIZE + 1);
    len = s_header(header, 1, 1, "big", "evil", ++evil.public_seq, 0);
    s_pub_send(&evil, "P", 1, header, len, big, MAX_MSG_SIZE + 61440);
    //  Exactly the limit is fine.
    len = s_header(header, 1, 1, "limit", "evil", ++evil.public_seq, 0);
    s_pub_send(&evil, "P", 1, header, len, big, MAX_MSG_SIZE);
    {
        char expected[512];
        snprintf(expected, sizeof expected, "msg public evil - limit %" PRIu64 " %.200s",
                 evil.public_seq, big);
        s_expect_msg(expected);
    }
    //  The limit is on the payload alone: the longest group topic and a
    //  255-byte type in front of it do not count.
    ZT_EQ(zt_proc_command(s_victim, "join %s", long_group), 0);
    {
        char topic[ZC_WIRE_TOPIC_MAX], expected[1024];
        int topic_len =
            zc_wire_topic_encode(ZC_KIND_GROUP, long_group, (uint8_t *)topic, sizeof topic);
        ZT_EQ(topic_len, ZC_WIRE_TOPIC_MAX);
        len = s_header(header, 1, 2, long_type, "evil", 1, 0);
        s_pub_send(&evil, topic, (size_t)topic_len, header, len, big, MAX_MSG_SIZE);
        snprintf(expected, sizeof expected, "msg group evil %s %s 1 %.200s", long_group, long_type,
                 big);
        s_expect_msg(expected);
        len = s_header(header, 1, 2, long_type, "evil", 2, 0);
        s_pub_send(&evil, topic, (size_t)topic_len, header, len, big, MAX_MSG_SIZE + 1);
    }
    //  Processed before the good message behind it on the same connection;
    //  leaving first could drop it unseen, as no longer subscribed.
    s_good_public(&evil);
    ZT_EQ(zt_proc_command(s_victim, "leave %s", long_group), 0);
    s_check_moved("oversized on the SUB", &before, "oversized=3 recv_public=2 recv_group=1");

    zt_section("sequence gaps are counted lost, exactly");
    s_read_counters(&before);
    evil.public_seq += 3; //  three public messages never sent
    s_good_public(&evil);
    evil.group_seq += 5;
    s_good_group(&evil);
    evil.private_seq += 2;
    s_good_private(&evil);
    s_check_moved("gaps", &before, "lost=10 recv_public=1 recv_group=1 recv_private=1");

    zt_section("a sender restart (numbers going back) is not loss");
    s_read_counters(&before);
    evil.public_seq = 0;
    s_good_public(&evil); //  seq 1
    s_good_public(&evil); //  seq 2
    evil.group_seq = 0;
    s_good_group(&evil);
    evil.private_seq = 0;
    s_good_private(&evil);
    s_good_private(&evil);
    s_check_moved("restart", &before, "recv_public=2 recv_group=1 recv_private=2");

    zt_section("garbage and wrong frame counts on the ROUTER path");
    //  The ROUTER reads the routing id and then what the DEALER sent: a
    //  message of 2 DEALER frames arrives as 3, and so on. It never sees
    //  fewer than 2, since ZeroMQ has no message of zero frames.
    s_read_counters(&before);
    for (int i = 0; i < 3; i++) {
        uint8_t garbage[40];
        for (size_t b = 0; b < sizeof garbage; b++)
            garbage[b] = (uint8_t)(b * 53 + i * 7 + 0x90);
        s_dealer_send(&evil, garbage, sizeof garbage - (size_t)i * 10, "x", 1);
    }
    len = s_header(header, 1, 3, "t", "evil", evil.private_seq + 1, 0);
    {
        const void *frames[5] = {header, "x", "y", "z", "w"};
        size_t sizes[5] = {len, 1, 1, 1, 1};
        ZT_EQ(s_send_frames(evil.dealer, frames, sizes, 2), 0); //  the multipart layout
        ZT_EQ(s_send_frames(evil.dealer, frames, sizes, 3), 0);
        ZT_EQ(s_send_frames(evil.dealer, frames, sizes, 5), 0);
    }
    s_dealer_send(&evil, NULL, 0, NULL, 0);                  //  an empty frame
    s_dealer_send(&evil, header, len / 2, NULL, 0);          //  ends inside the header
    s_dealer_send(&evil, header, len - 1, NULL, 0);          //  corr missing
    s_send_joined(evil.dealer, "P", 1, header, len, "x", 1); //  a topic in front
    s_good_private(&evil);
    s_check_moved("garbage on the ROUTER", &before, "malformed=10 recv_private=1");

    zt_section("foreign versions on the ROUTER path");
    s_read_counters(&before);
    len = s_header(header, 3, 3, "future", "evil", evil.private_seq + 1, 0);
    s_dealer_send(&evil, header, len, "x", 1);
    s_dealer_send(&evil, "\x91\x07", 2, "x", 1);
    s_good_private(&evil);
    s_check_moved("versions on the ROUTER", &before, "bad_version=2 recv_private=1");

    zt_section("spoofed senders and public kinds on the ROUTER path");
    s_read_counters(&before);
    len = s_header(header, 1, 3, "t", "alpha", 1, 0);
    s_dealer_send(&evil, header, len, "x", 1);
    len = s_header(header, 1, 3, "t", "victim", 1, 0);
    s_dealer_send(&evil, header, len, "x", 1);
    len = s_header(header, 1, 3, "t", "evi", 1, 0); //  a prefix of the routing id
    s_dealer_send(&evil, header, len, "x", 1);
    len = s_header(header, 1, 3, "t", "evil2", 1, 0);
    s_dealer_send(&evil, header, len, "x", 1);
    len = s_header(header, 1, 1, "t", "evil", evil.private_seq + 1, 0);
    s_dealer_send(&evil, header, len, "x", 1);
    len = s_header(header, 1, 2, "t", "evil", evil.private_seq + 1, 0);
    s_dealer_send(&evil, header, len, "x", 1);
    s_good_private(&evil);
    s_check_moved("spoofed", &before, "malformed=6 recv_private=1");

    zt_section("requests and replies share the private-plane stream");
    s_read_counters(&before);
    len = s_header(header, 1, 4, "rpc.echo", "evil", ++evil.private_seq, 70000);
    s_dealer_send(&evil, header, len, "ping", 4);
    {
        char expected[128];
        snprintf(expected, sizeof expected, "msg request evil - rpc.echo %" PRIu64 " ping",
                 evil.private_seq);
        s_expect_msg(expected);
    }
    len = s_header(header, 1, 5, "rpc.echo", "evil", ++evil.private_seq, 70000);
    s_dealer_send(&evil, header, len, "pong", 4);
    {
        char expected[128];
        snprintf(expected, sizeof expected, "msg reply evil - rpc.echo %" PRIu64 " pong",
                 evil.private_seq);
        s_expect_msg(expected);
    }
    s_good_private(&evil);
    s_check_moved("rpc kinds", &before, "recv_private=1");

    zt_section("oversized payloads on the ROUTER path");
    s_read_counters(&before);
    len = s_header(header, 1, 3, "big", "evil", ++evil.private_seq, 0);
    s_dealer_send(&evil, header, len, big, MAX_MSG_SIZE + 1);
    len = s_header(header, 1, 3, "big", "evil", ++evil.private_seq, 0);
    s_dealer_send(&evil, header, len, big, MAX_MSG_SIZE + 61440);
    len = s_header(header, 1, 3, long_type, "evil", ++evil.private_seq, 0);
    s_dealer_send(&evil, header, len, big, MAX_MSG_SIZE);
    {
        char expected[1024];
        snprintf(expected, sizeof expected, "msg private evil - %s %" PRIu64 " %.200s", long_type,
                 evil.private_seq, big);
        s_expect_msg(expected);
    }
    s_good_private(&evil);
    s_check_moved("oversized on the ROUTER", &before, "oversized=2 recv_private=2");

    zt_section("a frame past the transport limit drops the connection, then loss shows");
    s_read_counters(&before);
    char *huge = (char *)calloc(1, MAX_MSG_SIZE + 65536 + 1000);
    len = s_header(header, 1, 3, "huge", "evil", ++evil.private_seq, 0);
    s_dealer_send(&evil, header, len, huge, MAX_MSG_SIZE + 65536 + 1000);
    ZT_EQ(s_wait_event(evil.dealer_monitor, ZMQ_EVENT_DISCONNECTED), 0);
    ZT_EQ(s_wait_event(evil.dealer_monitor, ZMQ_EVENT_HANDSHAKE_SUCCEEDED), 0);
    s_good_private(&evil);
    s_check_moved("transport limit", &before, "lost=1 recv_private=1");
    free(huge);
    free(big);

    zt_section("a routing id cannot forge log lines");
    s_read_counters(&before);
    {
        void *forger = zmq_socket(evil.ctx, ZMQ_DEALER);
        const char forged[] = "x\nFORGED line";
        int zero = 0;
        zmq_setsockopt(forger, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(forger, ZMQ_ROUTING_ID, forged, strlen(forged));
        ZT_EQ(zmq_connect(forger, victim_router), 0);
        const void *frames[2] = {"\x90", "x"};
        size_t sizes[2] = {1, 1};
        ZT_EQ(s_send_frames(forger, frames, sizes, 2), 0);
        ZT_EQ(s_wait_counter("malformed", before.value[0] + 1), 0);
        zmq_close(forger);
    }
    s_check_moved("forged routing id", &before, "malformed=1");

    zt_section("made-up sender names cannot flood the log");
    s_read_counters(&before);
    for (int i = 0; i < 1100; i++) {
        char name[32];
        snprintf(name, sizeof name, "claimed-%d", i);
        len = s_header(header, 3, 3, "t", name, 1, 0);
        s_dealer_send(&evil, header, len, "x", 1);
        len = s_header(header, 3, 1, "t", name, 1, 0);
        s_pub_send(&evil, "P", 1, header, len, "x", 1);
    }
    s_good_private(&evil);
    s_good_public(&evil);
    s_check_moved("made-up names", &before, "bad_version=2200 recv_public=1 recv_private=1");

    zt_section("the victim is still well and logged each source once");
    s_good_public(&evil);
    s_good_group(&evil);
    s_good_private(&evil);
    ZT_EQ(zt_proc_send(s_victim, "quit"), 0);
    int status = zt_proc_wait(s_victim, 10000);
    ZT_CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    zt_proc_destroy(&s_victim);
    s_evil_stop(&evil);

    char *log = s_read_log();
    ZT_CHECK(log != NULL);
    if (log) {
        //  Dozens of bad messages came from four sources: the SUB path
        //  (which cannot tell senders apart before a header is read), the
        //  sender named "evil", the ROUTER routing ids "evil" and the
        //  forger's; then 1100 made-up names on the SUB path, of which 1020
        //  fit in the 1024 remembered sources and one line says the rest
        //  are only counted. Names made up on the ROUTER path count as its
        //  routing id.
        int dropped = s_log_count(log, "dropped ");
        ZT_EQ(dropped, 1024);
        ZT_EQ(s_log_count(log, "more than 1024 sources"), 1);
        ZT_EQ(s_log_count_start(log, "FORGED"), 0);
        ZT_EQ(s_log_count(log, "from routing id x?FORGED?line "), 1);
        ZT_EQ(s_log_count(log, "from unknown"), 1);
        ZT_EQ(s_log_count(log, "from evil "), 1);
        ZT_EQ(s_log_count(log, "from routing id evil "), 1);
        ZT_EQ(s_log_count(log, "AddressSanitizer"), 0);
        ZT_EQ(s_log_count(log, "runtime error"), 0);
        ZT_EQ(s_log_count(log, "LeakSanitizer"), 0);
        if (dropped < 20) fprintf(stderr, "-- the victim's stderr:\n%s", log);
        free(log);
    }
    unlink(s_log_path);
    return zt_done();
}
