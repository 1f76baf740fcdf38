/*  zcluster demo — a local cluster of node processes exchanging messages.

    The parent forks N node processes (before it touches ZeroMQ, so each
    child starts clean), hands each the others' endpoints over a pipe, and
    prints what every node sent and received. Each node joins group "even"
    or "odd" by its index, publishes to everyone, shouts to its own group
    and whispers to the next node; the summary checks every message arrived
    where it should, and nowhere else.
*/
#include "cli.h"
#include "zcluster.h"

#include <czmq.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEMO_MAX_NODES 16
#define DEMO_LINE      1024

typedef struct {
    int index, nodes, count;
    uint64_t from_public[DEMO_MAX_NODES], from_group[DEMO_MAX_NODES],
        from_private[DEMO_MAX_NODES];
} s_tally_t;

static int s_read_line(int fd, char *line, size_t cap)
{
    size_t used = 0;
    while (used + 1 < cap) {
        ssize_t n = read(fd, line + used, 1);
        if (n <= 0)
            return -1;
        if (line[used] == '\n')
            break;
        used++;
    }
    line[used] = 0;
    return 0;
}

static void s_write_line(int fd, const char *line)
{
    size_t len = strlen(line), done = 0;
    while (done < len) {
        ssize_t n = write(fd, line + done, len - done);
        if (n <= 0)
            return;
        done += (size_t) n;
    }
}

static const char *s_group_of(int index)
{
    return index % 2 ? "odd" : "even";
}

static void s_on_message(zc_mesh_t *mesh, const zc_msg_t *msg, void *arg)
{
    s_tally_t *tally = (s_tally_t *) arg;
    int from = atoi(zc_msg_sender(msg) + strlen("demo-"));
    if (from < 0 || from >= tally->nodes)
        return;
    if (zc_msg_kind(msg) == ZC_KIND_PUBLIC)
        tally->from_public[from]++;
    else if (zc_msg_kind(msg) == ZC_KIND_GROUP)
        tally->from_group[from]++;
    else if (zc_msg_kind(msg) == ZC_KIND_PRIVATE)
        tally->from_private[from]++;
}

//  The body of one node process. Returns its exit code.
static int s_node(int index, int nodes, int count, int in_fd, int out_fd)
{
    char id[32], line[DEMO_LINE];
    snprintf(id, sizeof id, "demo-%d", index);
    zc_mesh_t *mesh = zc_mesh_new(id);
    if (!mesh || zc_mesh_start(mesh) || zc_mesh_join(mesh, s_group_of(index)))
        return 1;
    s_tally_t tally = {index, nodes, count, {0}, {0}, {0}};
    zc_mesh_on(mesh, "hello", s_on_message, &tally);
    snprintf(line, sizeof line, "%s %s %s\n", id, zc_mesh_pub_endpoint(mesh),
             zc_mesh_router_endpoint(mesh));
    s_write_line(out_fd, line);
    for (int i = 0; i < nodes; i++) {
        char peer[ZC_NAME_MAX + 1], pub[256], router[256];
        if (s_read_line(in_fd, line, sizeof line)
            || sscanf(line, "%255s %255s %255s", peer, pub, router) != 3)
            return 1;
        if (strcmp(peer, id) != 0)
            zc_mesh_peer_add(mesh, peer, pub, router, NULL);
    }
    //  Subscriptions travel to publishers asynchronously: give them a moment.
    zc_mesh_recv(mesh, 500);
    char text[64];
    snprintf(text, sizeof text, "hello from %s", id);
    char next[32];
    snprintf(next, sizeof next, "demo-%d", (index + 1) % nodes);
    for (int i = 0; i < count; i++) {
        zc_mesh_publish(mesh, "hello", text, strlen(text));
        zc_mesh_shout(mesh, s_group_of(index), "hello", text, strlen(text));
        while (zc_mesh_whisper(mesh, next, "hello", text, strlen(text)) != 0)
            zc_mesh_recv(mesh, 1);
        zc_mesh_recv(mesh, 0);
    }
    zc_mesh_recv(mesh, 1000);
    zc_mesh_stats_t stats;
    zc_mesh_stats(mesh, &stats);
    int used = snprintf(line, sizeof line, "%s lost=%" PRIu64 " malformed=%" PRIu64, id,
                        stats.lost, stats.malformed);
    for (int i = 0; i < nodes; i++)
        used += snprintf(line + used, sizeof line - (size_t) used, " %" PRIu64 ",%" PRIu64
                         ",%" PRIu64, tally.from_public[i], tally.from_group[i],
                         tally.from_private[i]);
    snprintf(line + used, sizeof line - (size_t) used, "\n");
    s_write_line(out_fd, line);
    zc_mesh_destroy(&mesh);
    return 0;
}

int cli_demo(int argc, char **argv)
{
    static struct option options[] = {{"nodes", required_argument, 0, 'n'},
                                      {"count", required_argument, 0, 'c'},
                                      {"help", no_argument, 0, 'h'},
                                      {0, 0, 0, 0}};
    int nodes = 4, count = 1000, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:c:h", options, NULL)) != -1) {
        if (c == 'n')
            nodes = atoi(optarg);
        else if (c == 'c')
            count = atoi(optarg);
        else {
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: zcluster demo [--nodes N (2..%d, default 4)] [--count N]\n",
                    DEMO_MAX_NODES);
            return c == 'h' ? 0 : CLI_USAGE;
        }
    }
    if (nodes < 2 || nodes > DEMO_MAX_NODES || count < 1 || count > 1000000) {
        fprintf(stderr, "zcluster demo: --nodes must be 2..%d and --count 1..1000000\n",
                DEMO_MAX_NODES);
        return CLI_USAGE;
    }
    printf("zcluster %s demo: %d node processes, %d messages of each kind per node\n",
           zcluster_version(), nodes, count);
    fflush(stdout);
    int to_child[DEMO_MAX_NODES][2], from_child[DEMO_MAX_NODES][2];
    pid_t pids[DEMO_MAX_NODES];
    for (int i = 0; i < nodes; i++) {
        if (pipe(to_child[i]) || pipe(from_child[i]))
            return 1;
        pids[i] = fork();
        if (pids[i] < 0)
            return 1;
        if (pids[i] == 0) {
            close(to_child[i][1]);
            close(from_child[i][0]);
            _exit(s_node(i, nodes, count, to_child[i][0], from_child[i][1]));
        }
        close(to_child[i][0]);
        close(from_child[i][1]);
    }
    char lines[DEMO_MAX_NODES][DEMO_LINE];
    int failed = 0;
    for (int i = 0; i < nodes; i++)
        failed |= s_read_line(from_child[i][0], lines[i], DEMO_LINE);
    for (int i = 0; i < nodes && !failed; i++)
        for (int j = 0; j < nodes; j++) {
            s_write_line(to_child[i][1], lines[j]);
            s_write_line(to_child[i][1], "\n");
        }
    int bad = failed;
    printf("\n%-8s %-5s %10s %10s %10s %6s\n", "node", "group", "public", "group", "private",
           "lost");
    for (int i = 0; i < nodes && !failed; i++) {
        char line[DEMO_LINE], id[32];
        unsigned long long lost = 0, malformed = 0;
        int off = 0;
        if (s_read_line(from_child[i][0], line, sizeof line)
            || sscanf(line, "%31s lost=%llu malformed=%llu%n", id, &lost, &malformed, &off) < 3) {
            bad = 1;
            continue;
        }
        uint64_t pub = 0, grp = 0, prv = 0;
        char *p = line + off;
        for (int j = 0; j < nodes; j++) {
            unsigned long long a, b, c2;
            int used = 0;
            if (sscanf(p, " %llu,%llu,%llu%n", &a, &b, &c2, &used) != 3) {
                bad = 1;
                break;
            }
            p += used;
            pub += a;
            grp += b;
            prv += c2;
            //  What node i must have from node j, and nothing else.
            int same_group = (i % 2) == (j % 2);
            int predecessor = (j + 1) % nodes == i;
            if (j == i ? (a || b || c2)
                       : (a != (unsigned long long) count
                          || b != (same_group ? (unsigned long long) count : 0)
                          || c2 != (predecessor ? (unsigned long long) count : 0)))
                bad = 1;
        }
        printf("%-8s %-5s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %6llu\n", id, s_group_of(i),
               pub, grp, prv, lost);
        bad |= lost != 0 || malformed != 0;
    }
    for (int i = 0; i < nodes; i++) {
        int status = 0;
        close(to_child[i][1]);
        close(from_child[i][0]);
        waitpid(pids[i], &status, 0);
        bad |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    printf("\n%s: every node got %d public messages from each other node, %d group messages\n"
           "from each member of its own group only, and %d private messages from the node\n"
           "before it.\n",
           bad ? "FAILED" : "OK", count, count, count);
    return bad ? 1 : 0;
}
