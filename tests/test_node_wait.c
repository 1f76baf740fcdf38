/*  zc_node_wait_peers: the slow joiner. A node started next to a running
    peer waits until that peer is reachable, and its very first publish
    after the wait arrives; a wait for more peers than exist times out. */
#include "testkit.h"
#include "zcluster.h"

#include <stdio.h>
#include <string.h>

int main(void)
{
    zt_redis_t *redis = zt_redis_start();
    ZT_CHECK(redis);
    if (!redis) return zt_done();
    const char *url = zt_redis_url(redis);
    zt_proc_t *peer = zt_cli_start("node", "--id", "b", "--redis", url, "--cluster", "w", NULL);
    ZT_CHECK(peer && zt_proc_expect(peer, "ready ", 5000));

    zt_section("the first publish after the wait arrives");
    zc_node_t *node = zc_node_new("a");
    zc_node_set_redis(node, url);
    zc_node_set_cluster(node, "w");
    ZT_EQ(zc_node_start(node), 0);
    ZT_EQ(zc_node_wait_peers(node, 1, 10000), 0);
    ZT_EQ(zc_node_error(node), ZC_OK);
    ZT_EQ(zc_node_publish(node, "hello", "first", 5), 0);
    const char *line = zt_proc_expect(peer, "msg public a - hello", 5000);
    ZT_CHECK(line && strstr(line, "first"));

    zt_section("waiting for more peers than there are times out");
    int64_t start = zt_now_ms();
    ZT_EQ(zc_node_wait_peers(node, 2, 300), -1);
    ZT_EQ(zc_node_error(node), ZC_ERR_TIMEOUT);
    ZT_CHECK(strstr(zc_node_errstr(node), "1 of 2 peers") != NULL);
    ZT_CHECK(zt_now_ms() - start >= 300);
    ZT_EQ(zc_node_wait_peers(node, 0, 0), 0);

    zt_section("a peer that left no longer counts");
    zt_proc_destroy(&peer);
    for (int64_t until = zt_now_ms() + 8000; zc_node_peer_count(node) && zt_now_ms() < until;)
        zc_node_recv(node, 100);
    ZT_EQ(zc_node_peer_count(node), 0);
    ZT_EQ(zc_node_wait_peers(node, 1, 200), -1);

    zc_node_destroy(&node);
    zt_redis_destroy(&redis);
    return zt_done();
}
