/*  The leader epoch never goes back (issue 14), even when Redis forgets:
    two nodes elect a leader, then Redis is made to look like a replica
    promoted before it got the last writes (the epoch counter back at 0,
    an older leader lease naming the other node with epoch 1). Every node
    keeps reporting an epoch at least as high as any it reported before,
    and the next leader's epoch is above all of them.
*/
#include "testkit.h"
#include "zc_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLUSTER "epoch"

static zt_proc_t *s_nodes[2];
static unsigned long long s_seen[2]; //  highest epoch each node reported
static int s_went_down;

//  Asks node i who leads; returns 1 if it does. Counts an epoch below one
//  it reported before.
static int s_leader(int i, unsigned long long *epoch)
{
    zt_proc_send(s_nodes[i], "leader");
    const char *line = zt_proc_expect(s_nodes[i], "ok leader ", 5000);
    int leader = 0;
    *epoch = 0;
    if (!line || sscanf(line, "ok leader %d %llu", &leader, epoch) != 2) return 0;
    if (*epoch < s_seen[i]) s_went_down++;
    if (*epoch > s_seen[i]) s_seen[i] = *epoch;
    return leader;
}

//  Polls until exactly one node leads, with an epoch above above; returns
//  its index (-1: timeout) and its epoch.
static int s_one_leader(unsigned long long *epoch, unsigned long long above, int timeout_ms)
{
    int64_t end = zt_now_ms() + timeout_ms;
    while (zt_now_ms() < end) {
        unsigned long long e[2];
        int a = s_leader(0, &e[0]), b = s_leader(1, &e[1]);
        *epoch = a ? e[0] : e[1];
        if (a + b == 1 && *epoch > above) return a ? 0 : 1;
        usleep(50000);
    }
    return -1;
}

static void s_command(zc_redis_t *redis, const char *format, const char *arg)
{
    redisReply *reply = zc_redis_command(redis, format, arg);
    ZT_CHECK(reply && reply->type != REDIS_REPLY_ERROR);
    if (reply) freeReplyObject(reply);
}

int main(void)
{
    zt_redis_t *server = zt_redis_start();
    ZT_CHECK(server != NULL);
    if (!server) return zt_done();
    setenv("ZC_REDIS_URL", zt_redis_url(server), 1);
    setenv("ZC_CLUSTER", CLUSTER, 1);
    const char *ids[2] = {"epoch-a", "epoch-b"};
    for (int i = 0; i < 2; i++) {
        s_nodes[i] = zt_cli_start("node", "--id", ids[i], "--lease-ttl", "1500", NULL);
        ZT_CHECK(s_nodes[i] && zt_proc_expect(s_nodes[i], "ready ", 10000));
    }
    zt_section("a leader, then a second one after the first lease is gone");
    unsigned long long first = 0, second = 0, third = 0;
    int leader = s_one_leader(&first, 0, 10000);
    ZT_CHECK(leader >= 0 && first >= 1);
    zc_redis_url_t url;
    char err[256];
    ZT_EQ(zc_redis_url_parse(zt_redis_url(server), &url, err, sizeof err), 0);
    zc_redis_t *redis = zc_redis_new(&url, 2000);
    s_command(redis, "DEL %s", "zc:{" CLUSTER "}:leader");
    leader = s_one_leader(&second, first, 10000);
    ZT_CHECK(leader >= 0 && second > first);

    zt_section("Redis forgets: epoch counter 0, an older lease of the other node");
    char lease[64];
    snprintf(lease, sizeof lease, "%s 1", ids[leader >= 0 ? 1 - leader : 0]);
    s_command(redis, "SET %s 0", "zc:{" CLUSTER "}:epoch");
    redisReply *reply = zc_redis_command(redis, "SET zc:{" CLUSTER "}:leader %s PX 1500", lease);
    ZT_CHECK(reply && reply->type == REDIS_REPLY_STATUS);
    if (reply) freeReplyObject(reply);
    //  The nodes run the election every lease/3: the next leader's epoch is
    //  above every one seen, and none is reported lower meanwhile.
    leader = s_one_leader(&third, second, 10000);
    ZT_CHECK(leader >= 0);
    ZT_CHECK(third > second);
    ZT_EQ(s_went_down, 0);
    reply = zc_redis_command(redis, "GET zc:{" CLUSTER "}:epoch");
    ZT_CHECK(reply && zc_redis_reply_int(reply, 0) == (long long)third);
    if (reply) freeReplyObject(reply);
    printf("epochs: %llu, then %llu, then %llu after Redis went back to 0\n", first, second, third);

    zc_redis_destroy(&redis);
    for (int i = 0; i < 2; i++)
        zt_proc_destroy(&s_nodes[i]);
    zt_redis_destroy(&server);
    return zt_done();
}
