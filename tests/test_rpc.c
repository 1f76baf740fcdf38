/*  Cluster RPC across node processes (`zcluster node` consoles that serve
    echo, sleep and fail besides the built-ins): every call form and every
    error case, late replies, fail-fast on a dead peer, the gather's list of
    nodes that did not answer, calls by connection id, and a slow handler
    that does not hold up other calls. */
#include "testkit.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NODES 4

static zt_redis_t *s_redis;
static zt_proc_t *s_node[NODES];
static char s_result[1024];

static int s_start(int i)
{
    char id[8];
    snprintf(id, sizeof id, "r%d", i);
    s_node[i] = zt_cli_start("node", "--id", id, "--redis", zt_redis_url(s_redis), "--cluster",
                             "rpc", NULL);
    return s_node[i] && zt_proc_expect(s_node[i], "ready ", 5000) ? 0 : -1;
}

//  Starts a call on node i and waits for its result line; returns it (and
//  keeps the reply lines in s_replies), or NULL. *ms gets the time taken.
static char s_replies[4096];
static const char *s_call(int i, const char *args, int wait_ms, long *ms)
{
    static int tag = 0;
    char t[16];
    snprintf(t, sizeof t, "t%d", ++tag);
    int64_t start = zt_now_ms();
    if (zt_proc_command(s_node[i], "call %s %s", t, args)) return NULL;
    char reply_prefix[32], result_prefix[32];
    snprintf(reply_prefix, sizeof reply_prefix, "reply %s ", t);
    snprintf(result_prefix, sizeof result_prefix, "result %s ", t);
    s_replies[0] = 0;
    while (1) {
        const char *line = zt_proc_expect(s_node[i], "re", wait_ms);
        if (!line) return NULL;
        if (strncmp(line, reply_prefix, strlen(reply_prefix)) == 0)
            snprintf(s_replies + strlen(s_replies), sizeof s_replies - strlen(s_replies), "%s|",
                     line + strlen(reply_prefix));
        else if (strncmp(line, result_prefix, strlen(result_prefix)) == 0) {
            if (ms) *ms = (long)(zt_now_ms() - start);
            snprintf(s_result, sizeof s_result, "%s", line + strlen(result_prefix));
            return s_result;
        }
    }
}

int main(void)
{
    s_redis = zt_redis_start();
    if (!ZT_CHECK(s_redis != NULL)) return zt_done();
    for (int i = 0; i < NODES; i++)
        if (!ZT_EQ(s_start(i), 0)) return zt_done();
    for (int i = 0; i < NODES; i++)
        for (int k = 0; k < NODES - 1; k++)
            ZT_CHECK(zt_proc_expect(s_node[i], "added ", 5000) != NULL);

    zt_section("call one node");
    const char *r = s_call(0, "r1 echo 2000 hello", 5000, NULL);
    ZT_CHECK(r && strstr(r, "status=ok replies=1 missing="));
    ZT_CHECK(strstr(s_replies, "r1 ok \"hello\"") != NULL);

    zt_section("errors come back as errors, not timeouts");
    long ms = 0;
    r = s_call(0, "r1 nosuch 5000", 6000, &ms);
    ZT_CHECK(r && strstr(r, "status=unknown method"));
    ZT_CHECK(ms < 2000);
    r = s_call(0, "r1 fail 5000", 6000, &ms);
    ZT_CHECK(r && strstr(r, "status=handler error"));
    ZT_CHECK(strstr(s_replies, "handler error 42 asked to fail") != NULL);
    ZT_CHECK(ms < 2000);
    r = s_call(0, "ghost echo 5000 x", 6000, &ms);
    ZT_CHECK(r && strstr(r, "status=no route to node"));
    ZT_CHECK(ms < 2000);
    r = s_call(0, "r1 bad\001name 5000", 6000, NULL);
    ZT_CHECK(r == NULL || strstr(r, "status=invalid call")); //  the console may refuse it first

    zt_section("a timeout, then the late reply is counted and dropped");
    r = s_call(0, "r1 sleep 300 1000", 3000, &ms);
    ZT_CHECK(r && strstr(r, "status=timed out replies=0 missing=r1"));
    ZT_CHECK(ms >= 250 && ms < 2000);
    usleep(1200 * 1000);
    zt_proc_send(s_node[0], "rpcstats");
    const char *stats = zt_proc_expect(s_node[0], "rpcstats ", 5000);
    ZT_CHECK(stats && zt_field(stats, "late_replies") == 1);

    zt_section("a slow handler does not hold up other calls");
    ZT_EQ(zt_proc_command(s_node[0], "call slow r1 sleep 5000 1500"), 0);
    r = s_call(0, "r1 echo 5000 quick", 5000, &ms);
    ZT_CHECK(r && strstr(r, "status=ok"));
    ZT_CHECK(ms < 700);
    printf("measured: echo during a 1500 ms handler answered in %ld ms\n", ms);
    ZT_CHECK(zt_proc_expect(s_node[0], "result slow status=ok", 5000) != NULL);

    zt_section("all nodes: gather and first reply; built-ins");
    r = s_call(0, "* ping 3000", 5000, NULL);
    ZT_CHECK(r && strstr(r, "status=ok replies=4 missing=\0"));
    for (int i = 0; i < NODES; i++) {
        char who[16];
        snprintf(who, sizeof who, "r%d ok", i);
        ZT_CHECK(strstr(s_replies, who) != NULL);
    }
    r = s_call(0, "*first echo 3000 one", 5000, NULL);
    ZT_CHECK(r && strstr(r, "status=ok"));
    r = s_call(1, "r2 methods 3000", 5000, NULL);
    ZT_CHECK(r && strstr(s_replies, "\"echo\"") && strstr(s_replies, "\"ping\""));
    r = s_call(1, "r2 info 3000", 5000, NULL);
    ZT_CHECK(r && strstr(s_replies, "\"id\"=>\"r2\"") && strstr(s_replies, "uptime_ms"));

    zt_section("gather lists the nodes that did not answer");
    zt_proc_signal(s_node[3], SIGSTOP);
    r = s_call(0, "* ping 400", 5000, &ms);
    //  Normally r3 times out; on a slow machine the registry may remove it
    //  first (heartbeat timeout), and the gather then reports it gone.
    int listed =
        r && (strstr(r, "status=timed out replies=3 missing=r3") ||
              (strstr(r, "status=peer gone replies=4") && strstr(s_replies, "r3 peer gone")));
    ZT_CHECK(listed);
    if (!listed)
        fprintf(stderr, "  gather with r3 stopped: %s / %s\n", r ? r : "no result", s_replies);
    zt_proc_signal(s_node[3], SIGCONT);

    zt_section("the node holding a connection");
    ZT_EQ(zt_proc_command(s_node[2], "conn add session-42"), 0);
    r = s_call(0, "@session-42 echo 3000 routed", 5000, NULL);
    ZT_CHECK(r && strstr(r, "status=ok") && strstr(s_replies, "r2 ok \"routed\""));
    r = s_call(0, "@nobody echo 3000 x", 5000, &ms);
    ZT_CHECK(r && strstr(r, "status=unknown connection"));
    ZT_CHECK(ms < 1000);
    ZT_EQ(zt_proc_command(s_node[1], "conn remove session-42"), 0); //  not the holder: kept
    r = s_call(0, "@session-42 echo 3000 still", 5000, NULL);
    ZT_CHECK(r && strstr(s_replies, "r2 ok \"still\""));
    ZT_EQ(zt_proc_command(s_node[2], "conn remove session-42"), 0);
    r = s_call(0, "@session-42 echo 3000 x", 5000, NULL);
    ZT_CHECK(r && strstr(r, "status=unknown connection"));

    zt_section("a call fails fast when its target dies");
    ZT_EQ(zt_proc_command(s_node[0], "call dying r1 sleep 10000 8000"), 0);
    usleep(200 * 1000);
    int64_t kill_at = zt_now_ms();
    zt_proc_signal(s_node[1], SIGKILL);
    const char *dead = zt_proc_expect(s_node[0], "result dying ", 8000);
    long gone_ms = (long)(zt_now_ms() - kill_at);
    ZT_CHECK(dead && strstr(dead, "status=peer gone"));
    ZT_CHECK(gone_ms < 3000);
    printf("measured: call to a killed node failed after %ld ms\n", gone_ms);

    for (int i = 0; i < NODES; i++)
        zt_proc_destroy(&s_node[i]);
    zt_redis_destroy(&s_redis);
    return zt_done();
}
