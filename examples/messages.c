/*  messages — public, group and private messages between two nodes.

    Two nodes of the cluster "examples", each on its own thread (a node
    belongs to the thread that uses it). alpha waits until beta hears its
    publishes (zc_node_wait_peers: ZeroMQ drops what a PUB sends before a
    new subscriber's subscription has arrived), then sends one message of
    each kind; beta answers the last privately.

    Run: ZC_REDIS_URL=redis://127.0.0.1:6379 ./messages
*/
#include <zcluster.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static void *s_beta(void *arg)
{
    zc_node_t *beta = (zc_node_t *)arg;
    int got = 0;
    while (got < 3) {
        zc_msg_t *msg = zc_node_recv(beta, 10000);
        if (!msg) break; //  timed out
        printf("beta got %s '%s' from %s: %.*s\n",
               zc_msg_kind(msg) == ZC_KIND_GROUP ? "group" : "a message", zc_msg_type(msg),
               zc_msg_sender(msg), (int)zc_msg_size(msg), (const char *)zc_msg_data(msg));
        got++;
    }
    zc_node_whisper(beta, "alpha", "thanks", "3 received", 10);
    return NULL;
}

int main(void)
{
    zc_node_t *alpha = zc_node_new("alpha");
    zc_node_t *beta = zc_node_new("beta");
    zc_node_set_cluster(alpha, "examples");
    zc_node_set_cluster(beta, "examples");
    zc_node_join(beta, "news");
    if (zc_node_start(alpha) || zc_node_start(beta)) {
        fprintf(stderr, "cannot start: %s\n", zc_node_errstr(alpha));
        return 1;
    }
    pthread_t thread;
    pthread_create(&thread, NULL, s_beta, beta);

    int rc = 1;
    if (zc_node_wait_peers(alpha, 1, 10000) == 0) {
        zc_node_publish(alpha, "hello", "to everyone", 11);
        zc_node_shout(alpha, "news", "headline", "to the group", 12);
        zc_node_whisper(alpha, "beta", "secret", "to beta only", 12);
        zc_msg_t *reply = zc_node_recv(alpha, 10000);
        if (reply && strcmp(zc_msg_type(reply), "thanks") == 0) {
            printf("alpha got '%s' from %s\n", zc_msg_type(reply), zc_msg_sender(reply));
            rc = 0;
        }
    } else
        fprintf(stderr, "beta not reachable: %s\n", zc_node_errstr(alpha));
    pthread_join(thread, NULL);
    zc_node_destroy(&beta);
    zc_node_destroy(&alpha);
    return rc;
}
