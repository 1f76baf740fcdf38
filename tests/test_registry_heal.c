/*  The registry heals from whatever Redis holds: four node processes and a
    real redis-server, and faults written straight into Redis (DEL of the
    membership set, SREM of one id, a record of the wrong type, every
    registry key deleted, garbage in the leader and epoch keys). Each heals
    within a refresh interval or two; no live node is removed or
    re-registered under a new incarnation (but the one whose record was
    given another incarnation, which its peers take as an update); an RPC
    in flight across each fault succeeds. A fifth node that nobody can connect to (it advertises
    an address that goes nowhere) stays around the whole time, over 30 s,
    and costs no removal either. Heal times are printed as `measured ...`.
*/
#include "testkit.h"
#include "zcluster.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NODES    4
#define LEASE_MS 2000 //  the default: refresh every 667 ms
//  Heal within this: one refresh interval, and as much again for a loaded
//  machine (a bound, not a speed claim).
#define HEAL_MS (2 * LEASE_MS / 3 + 1000)

static zt_redis_t *s_redis;
static zt_proc_t *s_nodes[NODES];
static char s_incs[NODES][64];

//  Runs one Redis command; returns the reply (caller frees) or NULL.
static redisReply *s_redis_cmd(const char *format, ...)
{
    redisContext *c = redisConnectUnix(zt_redis_socket(s_redis));
    if (!c || c->err) {
        if (c) redisFree(c);
        return NULL;
    }
    va_list ap;
    va_start(ap, format);
    redisReply *reply = (redisReply *)redisvCommand(c, format, ap);
    va_end(ap);
    redisFree(c);
    return reply;
}

static long long s_redis_int(const char *format, const char *arg)
{
    redisReply *reply = s_redis_cmd(format, arg);
    long long n = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    if (reply) freeReplyObject(reply);
    return n;
}

//  Copies a string reply into out ("" if none).
static const char *s_redis_str(char *out, size_t cap, const char *format, const char *arg)
{
    redisReply *reply = s_redis_cmd(format, arg);
    snprintf(out, cap, "%s",
             reply && (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS)
                 ? reply->str
                 : "");
    if (reply) freeReplyObject(reply);
    return out;
}

//  Returns 1 if every node has its record (a hash with its incarnation),
//  its set entry and its lease.
static int s_all_present(void)
{
    for (int i = 0; i < NODES; i++) {
        char key[64], type[32], inc[64];
        snprintf(key, sizeof key, "zc:{h}:node:n%d", i);
        if (strcmp(s_redis_str(type, sizeof type, "TYPE %s", key), "hash") != 0) return 0;
        if (!*s_redis_str(inc, sizeof inc, "HGET %s inc", key)) return 0;
        snprintf(key, sizeof key, "n%d", i);
        redisReply *reply = s_redis_cmd("SISMEMBER zc:{h}:nodes %s", key);
        int member = reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
        if (reply) freeReplyObject(reply);
        snprintf(key, sizeof key, "zc:{h}:lease:n%d", i);
        if (!member || s_redis_int("EXISTS %s", key) != 1) return 0;
    }
    return 1;
}

//  Waits until every node is present again; returns the ms it took, or -1.
static long s_wait_healed(int timeout_ms)
{
    int64_t start = zt_now_ms();
    while (zt_now_ms() - start < timeout_ms) {
        if (s_all_present()) return (long)(zt_now_ms() - start);
        usleep(20 * 1000);
    }
    return -1;
}

//  Waits until the leader key holds "<id> <epoch>"; returns 1, or 0 if no
//  node took the lease within three lease times.
static int s_wait_leader(void)
{
    for (int64_t until = zt_now_ms() + 3 * LEASE_MS; zt_now_ms() < until; usleep(50 * 1000)) {
        char value[128], holder[64];
        long long held = 0;
        s_redis_str(value, sizeof value, "GET %s", "zc:{h}:leader");
        if (sscanf(value, "%63s %lld", holder, &held) == 2 && held > 0) return 1;
    }
    return 0;
}

//  Waits for n0's "result TAG status=ok" line; any "removed" line on the
//  way is counted (zt_proc_expect reads past the lines it does not want).
static int s_removals;
static int s_call_ok(const char *tag)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "result %s ", tag);
    const char *line;
    while ((line = zt_proc_expect(s_nodes[0], "re", 6000)) != NULL) {
        if (strncmp(line, "removed ", 8) == 0) s_removals++;
        if (strncmp(line, prefix, strlen(prefix)) == 0)
            return strncmp(line + strlen(prefix), "status=ok", 9) == 0;
    }
    return 0;
}

//  Starts a 1 s RPC from n0 to n1, injects the fault, checks it heals and
//  that the call succeeded.
static void s_fault(const char *name, const char *command, const char *arg)
{
    static int calls = 0;
    zt_section(name);
    char tag[16];
    snprintf(tag, sizeof tag, "c%d", ++calls);
    zt_proc_send(s_nodes[0], "call %s n1 sleep 5000 1000", tag);
    usleep(100 * 1000); //  the request is on its way (the fault need not wait for it)
    redisReply *reply = s_redis_cmd(command, arg);
    ZT_CHECK(reply && reply->type != REDIS_REPLY_ERROR);
    if (reply) freeReplyObject(reply);
    long healed = s_wait_healed(HEAL_MS);
    ZT_CHECK(healed >= 0);
    printf("measured: %s healed in %ld ms\n", name, healed);
    ZT_CHECK(s_call_ok(tag));
}

int main(void)
{
    s_redis = zt_redis_start();
    ZT_CHECK(s_redis != NULL);
    if (!s_redis) return zt_done();
    const char *url = zt_redis_url(s_redis);
    int64_t started = zt_now_ms();

    zt_section("four nodes and one that nobody can reach");
    for (int i = 0; i < NODES; i++) {
        char id[8];
        snprintf(id, sizeof id, "n%d", i);
        s_nodes[i] = zt_cli_start("node", "--id", id, "--redis", url, "--cluster", "h", "--group",
                                  "g", NULL);
        ZT_CHECK(s_nodes[i] && zt_proc_expect(s_nodes[i], "ready ", 5000));
    }
    //  192.0.2.0/24 is TEST-NET-1: documentation only, routed nowhere.
    zt_proc_t *lonely = zt_cli_start("node", "--id", "lonely", "--redis", url, "--cluster", "h",
                                     "--advertise", "192.0.2.1", NULL);
    ZT_CHECK(lonely && zt_proc_expect(lonely, "ready ", 5000));
    for (int i = 0; i < NODES; i++) {
        int added = 0;
        while (added < NODES && zt_proc_expect(s_nodes[i], "added ", 5000))
            added++;
        ZT_EQ(added, NODES); //  the three others and lonely
    }
    for (int i = 0; i < NODES; i++) {
        char key[64];
        snprintf(key, sizeof key, "zc:{h}:node:n%d", i);
        s_redis_str(s_incs[i], sizeof s_incs[i], "HGET %s inc", key);
        ZT_CHECK(*s_incs[i]);
    }

    char epoch[64];
    long long first_epoch = atoll(s_redis_str(epoch, sizeof epoch, "GET %s", "zc:{h}:epoch"));
    ZT_CHECK(first_epoch > 0);

    s_fault("DEL of the membership set", "DEL %s", "zc:{h}:nodes");
    s_fault("SREM of one id", "SREM zc:{h}:nodes %s", "n2");
    s_fault("a record of the wrong type", "SET %s not-a-hash", "zc:{h}:node:n3");
    s_fault("a membership set of the wrong type", "SET %s not-a-set", "zc:{h}:nodes");
    s_fault("a record missing its groups", "HDEL %s groups", "zc:{h}:node:n1");
    //  Short absences a sync apart, each healed at once: a peer that saw n2
    //  missing at two syncs must not take them for one absence of a TTL.
    for (int i = 0; i < 5; i++)
        s_fault("SREM of one id, again", "SREM zc:{h}:nodes %s", "n2");
    //  A record that names another incarnation: n2 registers anew, and its
    //  peers, whose connections to it never dropped, take that as an update.
    s_fault("a record of another incarnation", "HSET %s inc someone-else", "zc:{h}:node:n2");
    {
        char inc[64];
        s_redis_str(inc, sizeof inc, "HGET %s inc", "zc:{h}:node:n2");
        ZT_CHECK(*inc && strcmp(inc, s_incs[2]) != 0 && strcmp(inc, "someone-else") != 0);
        snprintf(s_incs[2], sizeof s_incs[2], "%s", inc);
    }
    {
        //  Every key of the cluster at once, in one command.
        zt_section("every registry key deleted");
        redisReply *keys = s_redis_cmd("KEYS %s", "zc:{h}:*");
        ZT_CHECK(keys && keys->type == REDIS_REPLY_ARRAY && keys->elements >= 2 * NODES);
        if (keys && keys->type == REDIS_REPLY_ARRAY) {
            zt_proc_send(s_nodes[0], "call all n1 sleep 5000 1000");
            usleep(100 * 1000);
            const char **argv = (const char **)calloc(keys->elements + 1, sizeof(char *));
            argv[0] = "DEL";
            for (size_t i = 0; i < keys->elements; i++)
                argv[i + 1] = keys->element[i]->str;
            redisContext *c = redisConnectUnix(zt_redis_socket(s_redis));
            redisReply *del =
                c ? (redisReply *)redisCommandArgv(c, (int)keys->elements + 1, argv, NULL) : NULL;
            ZT_CHECK(del && del->type == REDIS_REPLY_INTEGER && del->integer >= 2 * NODES);
            if (del) freeReplyObject(del);
            if (c) redisFree(c);
            free(argv);
            long healed = s_wait_healed(HEAL_MS);
            ZT_CHECK(healed >= 0);
            printf("measured: every registry key deleted, healed in %ld ms\n", healed);
            //  The nodes are back before a leader is: the epoch check below
            //  counts this leadership, so wait for it.
            ZT_CHECK(s_wait_leader());
            ZT_CHECK(s_call_ok("all"));
        }
        if (keys) freeReplyObject(keys);
    }

    zt_section("garbage in the leader and epoch keys");
    redisReply *reply = s_redis_cmd("DEL zc:{h}:leader");
    if (reply) freeReplyObject(reply);
    reply = s_redis_cmd("HSET zc:{h}:leader x y");
    if (reply) freeReplyObject(reply);
    reply = s_redis_cmd("SET zc:{h}:epoch not-a-number");
    if (reply) freeReplyObject(reply);
    ZT_CHECK(s_wait_leader());
    //  Two new leaderships since the first (all keys deleted, then garbage):
    //  the epoch went up each time, never back to 1.
    s_redis_str(epoch, sizeof epoch, "GET %s", "zc:{h}:epoch");
    ZT_CHECK(atoll(epoch) > first_epoch + 1);

    zt_section("over 30 s: nobody removed, nobody re-registered");
    while (zt_now_ms() - started < 31000)
        usleep(100 * 1000);
    for (int i = 0; i < NODES; i++) {
        char key[64], inc[64];
        snprintf(key, sizeof key, "zc:{h}:node:n%d", i);
        ZT_CHECK(strcmp(s_redis_str(inc, sizeof inc, "HGET %s inc", key), s_incs[i]) == 0);
        ZT_CHECK(zt_proc_expect(s_nodes[i], "removed ", 300) == NULL);
        zt_proc_send(s_nodes[i], "info");
        const char *info = zt_proc_expect(s_nodes[i], "ok info ", 5000);
        ZT_CHECK(info && strstr(info, "\"id\":\"lonely\"") && strstr(info, "\"g\":[{"));
    }
    ZT_EQ(s_removals, 0);
    ZT_CHECK(zt_proc_expect(lonely, "removed ", 300) == NULL);
    ZT_EQ(s_redis_int("SCARD %s", "zc:{h}:nodes"), NODES + 1);

    zt_proc_destroy(&lonely);
    for (int i = 0; i < NODES; i++)
        zt_proc_destroy(&s_nodes[i]);
    zt_redis_destroy(&s_redis);
    return zt_done();
}
