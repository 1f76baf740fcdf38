/*  supervised_worker — a worker for `zcluster start`.

    The supervisor gives each worker its id, cluster and Redis URL in the
    environment (zc_node_new(NULL) and zc_node_start take them), waits for
    zc_supervisor_ready before counting it up (a rolling reload stops an old
    worker only once its replacement is ready), and stops it with SIGTERM.

    Run: zcluster start -n 2 -- ./supervised_worker
*/
#include <zcluster.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

static volatile sig_atomic_t s_stop;

static void s_on_term(int sig)
{
    s_stop = 1;
}

int main(void)
{
    zc_node_t *node = zc_node_new(NULL); //  $ZC_NODE_ID, e.g. zcluster-worker-1
    if (!node || zc_node_start(node)) {
        fprintf(stderr, "cannot start the node\n");
        zc_node_destroy(&node);
        return 1;
    }
    //  After zc_node_start, which lets CZMQ install its own handlers.
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = s_on_term;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);

    zc_supervisor_ready();
    while (!s_stop) {
        zc_msg_t *msg = zc_node_recv(node, 500);
        if (msg) printf("%s: %s from %s\n", zc_node_id(node), zc_msg_type(msg), zc_msg_sender(msg));
    }
    zc_node_destroy(&node); //  leaves the cluster: peers hear it at once
    return 0;
}
