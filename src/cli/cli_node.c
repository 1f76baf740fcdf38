/*  zcluster node — one node driven by line commands on stdin.

    A console for people trying zcluster by hand and a driver for the
    multi-process tests: every command answers exactly one line ("ok ..." or
    "error ..."), received messages and membership events are printed as
    they arrive, so a script can wait for what it expects. With a Redis URL
    (--redis or ZC_REDIS_URL) it is a full cluster node that finds its peers
    in the registry; without, a bare mesh node whose peers are given by hand.
    The line console itself (splitting, dispatch, answers) is cli_console.

    Under `zcluster start` it is a cluster node like any worker: id, cluster
    and Redis come from ZC_NODE_ID, ZC_CLUSTER and ZC_REDIS_URL (zc_node's
    defaults), it tells the master once it is started, and as stdin is
    /dev/null there its end does not stop it: it serves until SIGTERM.
*/
#include "cli.h"
#include "cli_args.h"
#include "cli_console.h"
#include "cli_metrics.h"
#include "zc_supervisor.h"
#include "zcluster.h"

#include <czmq.h>
#include <errno.h>
#include <limits.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4095

//  The node the console drives.
typedef struct {
    zc_node_t *node; //  NULL for a bare mesh node
    zc_rpc_t *rpc;   //  the node's RPC
    zc_mesh_t *mesh;
    int quiet;             //  count received messages but do not print them
    zlist_t *calls;        //  RPC calls started here, destroyed once done and printed
    zc_metrics_t *metrics; //  --metrics-port, or published for a master; NULL if neither
    int64_t metrics_due;   //  next snapshot (zclock_mono ms)
} s_node_t;

//  --------------------------------------------------------------------------
//  RPC: built-in test methods and call results

static void s_method_echo(zc_rpc_request_t *request, void *arg)
{
    zc_rpc_respond(request, zc_rpc_request_args(request), zc_rpc_request_size(request));
}

//  Args: the number of ms to sleep, as a msgpack string or integer.
static void s_method_sleep(zc_rpc_request_t *request, void *arg)
{
    msgpack_unpacked result;
    msgpack_unpacked_init(&result);
    size_t offset = 0;
    int64_t ms = 0;
    if (msgpack_unpack_next(&result, (const char *)zc_rpc_request_args(request),
                            zc_rpc_request_size(request), &offset) == MSGPACK_UNPACK_SUCCESS) {
        if (result.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            ms = (int64_t)result.data.via.u64;
        else if (result.data.type == MSGPACK_OBJECT_STR) {
            char text[32]; //  msgpack strings are not NUL-terminated
            snprintf(text, sizeof text, "%.*s", (int)result.data.via.str.size,
                     result.data.via.str.ptr);
            cli_args_number(text, INT64_MIN, INT64_MAX, &ms); //  not a number: 0
        }
    }
    msgpack_unpacked_destroy(&result);
    zclock_sleep((int)(ms < 0 ? 0 : ms > 60000 ? 60000 : ms));
    zc_rpc_respond(request, "\xa5slept", 6);
}

static void s_method_fail(zc_rpc_request_t *request, void *arg)
{
    zc_rpc_fail(request, 42, "asked to fail");
}

//  The console's words for a call's outcome, as scripts and tests read
//  them: zc_strerror's names, three of them spelled out.
static const char *s_status_name(zc_error_t status)
{
    switch (status) {
    case ZC_ERR_TIMEOUT:
        return "timed out";
    case ZC_ERR_NO_ROUTE:
        return "no route to node";
    case ZC_ERR_INVALID:
        return "invalid call";
    default:
        return zc_strerror(status);
    }
}

static void s_print_call(zc_rpc_t *rpc, zc_rpc_call_t *call, void *arg)
{
    const char *tag = (const char *)arg;
    for (size_t i = 0; i < zc_rpc_call_replies(call); i++) {
        const zc_rpc_reply_t *reply = zc_rpc_call_reply(call, i);
        char text[512] = "";
        if (reply->status == ZC_OK && reply->size) {
            msgpack_unpacked result;
            msgpack_unpacked_init(&result);
            size_t offset = 0;
            if (msgpack_unpack_next(&result, (const char *)reply->data, reply->size, &offset) ==
                MSGPACK_UNPACK_SUCCESS)
                msgpack_object_print_buffer(text, sizeof text, result.data);
            msgpack_unpacked_destroy(&result);
        } else if (reply->status != ZC_OK)
            snprintf(text, sizeof text, "%d %s", reply->error_code, reply->error);
        for (char *c = text; *c; c++)
            if (*c == '\n') *c = ' ';
        printf("reply %s %s %s %s\n", tag, reply->node, s_status_name(reply->status), text);
    }
    printf("result %s status=%s replies=%zu missing=", tag, s_status_name(zc_rpc_call_status(call)),
           zc_rpc_call_replies(call));
    for (size_t i = 0; i < zc_rpc_call_missing(call); i++)
        printf("%s%s", i ? "," : "", zc_rpc_call_missing_node(call, i));
    printf("\n");
    fflush(stdout);
}

//  Destroys the calls that are done (they were printed when they completed).
static void s_reap_calls(s_node_t *self)
{
    if (!self->calls) return;
    zlist_t *keep = zlist_new();
    while (zlist_size(self->calls) >= 2) {
        char *tag = (char *)zlist_pop(self->calls);
        zc_rpc_call_t *call = (zc_rpc_call_t *)zlist_pop(self->calls);
        if (zc_rpc_call_done(call)) {
            zc_rpc_call_destroy(&call);
            free(tag);
        } else {
            zlist_append(keep, tag);
            zlist_append(keep, call);
        }
    }
    zlist_destroy(&self->calls);
    self->calls = keep;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: zcluster node [--id ID] [--pub ENDPOINT] [--router ENDPOINT]\n"
            "                     [--max-msg-size BYTES] [--group NAME]...\n"
            "                     [--redis URL] [--cluster NAME] [--bind HOST]\n"
            "                     [--advertise HOST] [--lease-ttl MS]\n"
            "                     [--heartbeat-interval MS] [--heartbeat-timeout MS]\n"
            "                     [--header KEY=VALUE]... [--no-election] [--keys FILE]\n"
            "                     [--metrics-port PORT] [--batch]\n\n"
            "Starts a node, prints `ready ID PUB-ENDPOINT ROUTER-ENDPOINT`, then reads\n"
            "commands on stdin, one per line; each answers one line, `ok ...` or `error ...`.\n"
            "With --redis (or ZC_REDIS_URL) the node joins the cluster through the Redis\n"
            "registry (cluster: --cluster or $ZC_CLUSTER, default 'zcluster'); otherwise\n"
            "peers are added by hand with `peer`. Id: --id or $ZC_NODE_ID, else a generated\n"
            "one. Under `zcluster start` it takes all three from the master, tells it when\n"
            "it is ready and serves until SIGTERM (the end of stdin does not stop it).\n"
            "Credentials: --keys FILE or $ZC_KEYS (zcluster keygen); without, the node\n"
            "runs unauthenticated and says so. With them, `peer` without KEY expects the\n"
            "cluster key, and `stats` counts refused connections (refused=N).\n"
            "A cluster node publishes its counters to Redis each second (for a master's\n"
            "GET /metrics and for zcluster top); --metrics-port serves\n"
            "them itself, GET http://127.0.0.1:PORT/metrics (0: any free port), and prints\n"
            "`metrics PORT` after the ready line.\n"
            "--batch (or ZC_BATCH=1): small messages sent in a burst travel in batch frames\n"
            "to the peers that read them (docs/PROTOCOL.md section 8.1).\n"
            "Membership settings (with the registry):\n" CLI_USAGE_MEMBERSHIP
            "  peer ID PUB ROUTER [KEY]        add a peer          unpeer ID     remove it\n"
            "  join GROUP | leave GROUP        group membership\n"
            "  publish TYPE TEXT               public message to every node\n"
            "  shout GROUP TYPE TEXT           message to a group's members\n"
            "  whisper ID TYPE TEXT            private message to one node\n"
            "  flood public TYPE COUNT SIZE | flood group GROUP TYPE COUNT SIZE\n"
            "  flood private ID TYPE COUNT SIZE  send COUNT messages of SIZE bytes\n"
            "  quiet on|off                    stop/start printing received messages\n"
            "  stats                           counters as key=value pairs\n"
            "  quit\n"
            "With the registry also:\n"
            "  info                            the cluster as JSON (`ok info {...}`)\n"
            "  leader                          `ok leader 1|0 EPOCH`\n"
            "  kill ID CODE                    ask node ID to exit with CODE\n"
            "  confirm NAME                    send a named confirmation to every peer\n"
            "  wait NAME COUNT MS              wait for COUNT peers' NAME confirmations:\n"
            "                                  `ok wait ID,ID...`\n"
            "  reach COUNT MS                  wait until COUNT peers hear this node's\n"
            "                                  publishes (zc_node_wait_peers)\n"
            "  call TAG TARGET METHOD MS [TEXT] RPC to ID, * (all, gather), *first or\n"
            "                                  @CONNECTION; prints `reply TAG NODE STATUS RESULT`\n"
            "                                  lines, then `result TAG status=S replies=N "
            "missing=IDS`\n"
            "  conn add|remove ID              hold a connection id (for @ID calls)\n"
            "  rpcstats                        RPC counters\n"
            "The node serves the RPC methods echo, sleep (args: ms) and fail, besides the\n"
            "built-in ping, info and methods.\n"
            "Received messages print as `msg KIND SENDER GROUP|- TYPE SEQ TEXT`,\n"
            "dropped peer connections as `lost ID`; with the registry, membership as\n"
            "`added ID`, `removed ID left|expired|crashed`, `promoted EPOCH`, `demoted EPOCH`,\n"
            "and a member whose connection from here dropped as `unreachable ID` (it stays a\n"
            "member; whisper and call to it fail at once) and `reachable ID` when it is back.\n");
}

static void s_print_msg(const zc_msg_t *msg)
{
    static const char *kinds[] = {"?", "public", "group", "private", "request", "reply"};
    char text[201];
    size_t size = zc_msg_size(msg) < 200 ? zc_msg_size(msg) : 200;
    const unsigned char *data = (const unsigned char *)zc_msg_data(msg);
    for (size_t i = 0; i < size; i++)
        text[i] = data[i] >= 0x20 && data[i] < 0x7f ? (char)data[i] : '.';
    text[size] = 0;
    int kind = zc_msg_kind(msg);
    printf("msg %s %s %s %s %" PRIu64 " %s\n", kinds[kind >= 1 && kind <= 5 ? kind : 0],
           zc_msg_sender(msg), zc_msg_group(msg) ? zc_msg_group(msg) : "-", zc_msg_type(msg),
           zc_msg_seq(msg), text);
}

static void s_on_peer_lost(zc_mesh_t *mesh, const char *peer, void *arg)
{
    printf("lost %s\n", peer);
    fflush(stdout);
}

static void s_on_added(zc_node_t *node, const char *peer, void *arg)
{
    printf("added %s\n", peer);
    fflush(stdout);
}

static void s_on_removed(zc_node_t *node, const char *peer, zc_removed_t reason, void *arg)
{
    static const char *reasons[] = {"?", "left", "expired", "crashed"};
    printf("removed %s %s\n", peer, reasons[reason >= 1 && reason <= 3 ? reason : 0]);
    fflush(stdout);
}

static void s_on_promoted(zc_node_t *node, uint64_t epoch, void *arg)
{
    printf("promoted %" PRIu64 "\n", epoch);
    fflush(stdout);
}

static void s_on_demoted(zc_node_t *node, uint64_t epoch, void *arg)
{
    printf("demoted %" PRIu64 "\n", epoch);
    fflush(stdout);
}

//  Prints the change; under a master, the worker's status (the admin API's
//  worker list) says which members are unreachable from here.
static void s_on_unreachable(zc_node_t *node, const char *peer, int unreachable, void *arg)
{
    printf("%s %s\n", unreachable ? "unreachable" : "reachable", peer);
    fflush(stdout);
    if (!zc_supervisor_managed()) return;
    zlist_t *ids = zc_node_unreachable(node);
    char status[256] = "all members reachable";
    if (zlist_size(ids)) {
        size_t used = (size_t)snprintf(status, sizeof status, "unreachable from here:");
        for (char *id = (char *)zlist_first(ids); id && used < sizeof status;
             id = (char *)zlist_next(ids))
            used += (size_t)snprintf(status + used, sizeof status - used, " %s", id);
    }
    zc_supervisor_status(status);
    zlist_destroy(&ids);
}

static zc_msg_t *s_recv(s_node_t *self, int timeout_ms)
{
    return self->node ? zc_node_recv(self->node, timeout_ms) : zc_mesh_recv(self->mesh, timeout_ms);
}

//  Drains whatever has arrived, printing it unless quiet.
static void s_drain(s_node_t *self)
{
    zc_msg_t *msg;
    while ((msg = s_recv(self, 0)) != NULL)
        if (!self->quiet) s_print_msg(msg);
    s_reap_calls(self);
    fflush(stdout);
}

//  Sends count messages of size bytes; private sends wait while the peer's
//  queue is full. Returns 0 or -1 with errno.
static int s_flood(s_node_t *self, const char *kind, const char *target, const char *type,
                   int64_t count, int64_t size)
{
    if (count < 0 || size < 0 || size > 64 * 1024 * 1024) {
        errno = EINVAL;
        return -1;
    }
    char *payload = (char *)malloc((size_t)size + 1);
    if (!payload) return -1;
    memset(payload, 'x', (size_t)size);
    int rc = 0;
    for (int64_t i = 0; i < count && rc == 0; i++) {
        if (strcmp(kind, "public") == 0)
            rc = zc_mesh_publish(self->mesh, type, payload, (size_t)size);
        else if (strcmp(kind, "group") == 0)
            rc = zc_mesh_shout(self->mesh, target, type, payload, (size_t)size);
        else if (strcmp(kind, "private") == 0) {
            while ((rc = zc_mesh_whisper(self->mesh, target, type, payload, (size_t)size)) != 0 &&
                   errno == EAGAIN)
                s_recv(self, 1);
        } else {
            errno = EINVAL;
            rc = -1;
        }
    }
    free(payload);
    return rc;
}

//  --------------------------------------------------------------------------
//  Commands of every node

//  Answers a mesh or node call: ok, or why it failed (errno, which the
//  console cleared before the command). Returns 0.
static int s_answer(cli_console_t *console, int rc)
{
    if (rc) cli_console_error(console, "%s", errno ? strerror(errno) : "invalid arguments");
    return 0;
}

//  peer ID PUB ROUTER [KEY]
static int s_cmd_peer(cli_console_t *console, void *self, int argc, char **argv)
{
    zc_mesh_t *mesh = ((s_node_t *)self)->mesh;
    if (argc == 5 && !zc_security_key_valid(argv[4])) {
        cli_console_error(console, "KEY must be a CURVE public key: 40 Z85 characters");
        return 0;
    }
    return s_answer(console,
                    zc_mesh_peer_add(mesh, argv[1], argv[2], argv[3], argc == 5 ? argv[4] : NULL));
}

//  unpeer ID
static int s_cmd_unpeer(cli_console_t *console, void *self, int argc, char **argv)
{
    return s_answer(console, zc_mesh_peer_remove(((s_node_t *)self)->mesh, argv[1]));
}

//  join GROUP | leave GROUP
static int s_cmd_join_or_leave(cli_console_t *console, void *self, int argc, char **argv)
{
    s_node_t *node = (s_node_t *)self;
    int join = strcmp(argv[0], "join") == 0;
    if (node->node)
        return s_answer(console, join ? zc_node_join(node->node, argv[1])
                                      : zc_node_leave(node->node, argv[1]));
    return s_answer(console,
                    join ? zc_mesh_join(node->mesh, argv[1]) : zc_mesh_leave(node->mesh, argv[1]));
}

//  publish TYPE [TEXT] | shout GROUP TYPE [TEXT] | whisper ID TYPE [TEXT]
static int s_cmd_send(cli_console_t *console, void *self, int argc, char **argv)
{
    zc_mesh_t *mesh = ((s_node_t *)self)->mesh;
    zc_node_t *node = ((s_node_t *)self)->node;
    int publish = strcmp(argv[0], "publish") == 0;
    const char *text = argc > 3 - publish ? argv[argc - 1] : "";
    if (publish) return s_answer(console, zc_mesh_publish(mesh, argv[1], text, strlen(text)));
    if (strcmp(argv[0], "shout") == 0)
        return s_answer(console, zc_mesh_shout(mesh, argv[1], argv[2], text, strlen(text)));
    int rc = node ? zc_node_whisper(node, argv[1], argv[2], text, strlen(text))
                  : zc_mesh_whisper(mesh, argv[1], argv[2], text, strlen(text));
    if (rc && errno == ENOTCONN) {
        cli_console_error(console, "peer %s is unreachable from this node", argv[1]);
        return 0;
    }
    return s_answer(console, rc);
}

//  flood public TYPE COUNT SIZE | flood group|private TARGET TYPE COUNT SIZE
static int s_cmd_flood(cli_console_t *console, void *self, int argc, char **argv)
{
    int targeted = strcmp(argv[1], "public") != 0;
    if (argc != 5 + targeted) return s_answer(console, -1);
    int64_t count, size;
    if (cli_args_number(argv[3 + targeted], INT64_MIN, INT64_MAX, &count) ||
        cli_args_number(argv[4 + targeted], INT64_MIN, INT64_MAX, &size))
        return -1;
    return s_answer(console, s_flood((s_node_t *)self, argv[1], targeted ? argv[2] : NULL,
                                     argv[2 + targeted], count, size));
}

//  quiet on|off
static int s_cmd_quiet(cli_console_t *console, void *self, int argc, char **argv)
{
    ((s_node_t *)self)->quiet = strcmp(argv[1], "on") == 0;
    return 0;
}

//  stats: what arrived first, then the mesh's counters as the answer.
static int s_cmd_stats(cli_console_t *console, void *self, int argc, char **argv)
{
    s_node_t *node = (s_node_t *)self;
    s_drain(node);
    zc_mesh_stats_t s;
    zc_mesh_stats(node->mesh, &s);
    cli_console_line(
        console,
        "stats sent_public=%" PRIu64 " sent_group=%" PRIu64 " sent_private=%" PRIu64
        " recv_public=%" PRIu64 " recv_group=%" PRIu64 " recv_private=%" PRIu64
        " bytes_sent=%" PRIu64 " bytes_received=%" PRIu64 " lost=%" PRIu64 " malformed=%" PRIu64
        " bad_version=%" PRIu64 " oversized=%" PRIu64 " send_dropped=%" PRIu64 " no_route=%" PRIu64
        " peers_lost=%" PRIu64 " refused=%" PRIu64 " peers=%zu",
        s.sent_public, s.sent_group, s.sent_private, s.recv_public, s.recv_group, s.recv_private,
        s.bytes_sent, s.bytes_received, s.lost, s.malformed, s.bad_version, s.oversized,
        s.send_dropped, s.no_route, s.peers_lost, s.refused, zc_mesh_peer_count(node->mesh));
    return 0;
}

//  --------------------------------------------------------------------------
//  Commands of a cluster node (with the registry): without one they are
//  unknown, as wrong arguments.

//  info
static int s_cmd_info(cli_console_t *console, void *self, int argc, char **argv)
{
    s_node_t *node = (s_node_t *)self;
    if (!node->node) return -1;
    char *info = zc_node_cluster_info(node->node);
    cli_console_ok(console, "%s", info ? info : "(null)");
    free(info);
    return 0;
}

//  leader
static int s_cmd_leader(cli_console_t *console, void *self, int argc, char **argv)
{
    s_node_t *node = (s_node_t *)self;
    if (!node->node) return -1;
    cli_console_ok(console, "%d %" PRIu64, zc_node_leader(node->node), zc_node_epoch(node->node));
    return 0;
}

//  kill ID CODE
static int s_cmd_kill(cli_console_t *console, void *self, int argc, char **argv)
{
    s_node_t *node = (s_node_t *)self;
    int64_t code;
    if (!node->node || cli_args_number(argv[2], INT_MIN, INT_MAX, &code)) return -1;
    return s_answer(console, zc_node_kill(node->node, argv[1], (int)code));
}

//  call TAG TARGET METHOD MS [TEXT]; TARGET: ID, *, *first, @CONNECTION.
//  The result prints when the call completes.
static int s_cmd_call(cli_console_t *console, void *self, int argc, char **argv)
{
    s_node_t *node = (s_node_t *)self;
    int64_t timeout;
    if (!node->node || cli_args_number(argv[4], INT_MIN, INT_MAX, &timeout)) return -1;
    const char *target = argv[2];
    zc_rpc_target_t kind = strcmp(target, "*") == 0        ? ZC_RPC_ALL_GATHER
                           : strcmp(target, "*first") == 0 ? ZC_RPC_ALL_FIRST
                           : target[0] == '@'              ? ZC_RPC_CONNECTION
                                                           : ZC_RPC_NODE;
    const char *to = kind == ZC_RPC_CONNECTION ? target + 1 : kind == ZC_RPC_NODE ? target : NULL;
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    const char *text = argc > 5 ? argv[5] : "";
    msgpack_pack_str_with_body(&pk, text, strlen(text));
    //  The tag lives as long as the call: keep a copy in the calls list.
    char *tag = strdup(argv[1]);
    zlist_append(node->calls, tag);
    zc_rpc_call_t *call = zc_rpc_start(node->rpc, kind, to, argv[3], sbuf.data, sbuf.size,
                                       (int)timeout, s_print_call, tag);
    zlist_append(node->calls, call);
    msgpack_sbuffer_destroy(&sbuf);
    return 0;
}

//  conn add|remove ID
static int s_cmd_conn(cli_console_t *console, void *self, int argc, char **argv)
{
    s_node_t *node = (s_node_t *)self;
    int rc;
    if (!node->node) return -1;
    if (strcmp(argv[1], "add") == 0)
        rc = zc_rpc_connection_add(node->rpc, argv[2]);
    else if (strcmp(argv[1], "remove") == 0)
        rc = zc_rpc_connection_remove(node->rpc, argv[2]);
    else
        return -1;
    if (rc) cli_console_error(console, "%s", zc_rpc_errstr(node->rpc));
    return 0;
}

//  rpcstats
static int s_cmd_rpcstats(cli_console_t *console, void *self, int argc, char **argv)
{
    s_node_t *node = (s_node_t *)self;
    if (!node->node) return -1;
    zc_rpc_stats_t st;
    zc_rpc_stats(node->rpc, &st);
    cli_console_line(console,
                     "rpcstats calls_started=%" PRIu64 " calls_ok=%" PRIu64 " calls_failed=%" PRIu64
                     " calls_timed_out=%" PRIu64 " requests_handled=%" PRIu64
                     " late_replies=%" PRIu64,
                     st.calls_started, st.calls_ok, st.calls_failed, st.calls_timed_out,
                     st.requests_handled, st.late_replies);
    return 0;
}

//  confirm NAME
static int s_cmd_confirm(cli_console_t *console, void *self, int argc, char **argv)
{
    s_node_t *node = (s_node_t *)self;
    if (!node->node) return -1;
    return s_answer(console, zc_node_confirm(node->node, argv[1]));
}

//  reach COUNT MS: `ok reach` once COUNT peers hear this node's publishes
static int s_cmd_reach(cli_console_t *console, void *self, int argc, char **argv)
{
    s_node_t *node = (s_node_t *)self;
    int64_t count, timeout;
    if (!node->node || cli_args_number(argv[1], 0, INT_MAX, &count) ||
        cli_args_number(argv[2], 0, INT_MAX, &timeout))
        return -1;
    if (zc_node_wait_peers(node->node, (size_t)count, (int)timeout))
        cli_console_error(console, "%s", zc_node_errstr(node->node));
    return 0;
}

//  wait NAME COUNT MS: `ok wait ID,ID...`
static int s_cmd_wait(cli_console_t *console, void *self, int argc, char **argv)
{
    s_node_t *node = (s_node_t *)self;
    int64_t count, timeout;
    if (!node->node || cli_args_number(argv[2], 0, INT64_MAX, &count) ||
        cli_args_number(argv[3], INT_MIN, INT_MAX, &timeout))
        return -1;
    zlist_t *ids = zc_node_wait_confirmations(node->node, argv[1], (size_t)count, (int)timeout);
    if (!ids) {
        cli_console_error(console, "timed out");
        return 0;
    }
    size_t len = 1;
    for (char *id = (char *)zlist_first(ids); id; id = (char *)zlist_next(ids))
        len += strlen(id) + 1;
    char *list = (char *)calloc(1, len);
    for (char *id = (char *)zlist_first(ids); list && id; id = (char *)zlist_next(ids))
        strcat(strcat(list, *list ? "," : ""), id);
    cli_console_line(console, "ok wait %s", list ? list : "");
    free(list);
    zlist_destroy(&ids);
    return 0;
}

static const cli_command_t s_commands[] = {
    {"peer", 3, 4, s_cmd_peer, NULL, 0},
    {"unpeer", 1, 1, s_cmd_unpeer, NULL, 0},
    {"join", 1, 1, s_cmd_join_or_leave, NULL, 0},
    {"leave", 1, 1, s_cmd_join_or_leave, NULL, 0},
    {"publish", 1, 2, s_cmd_send, NULL, CLI_REST},
    {"shout", 2, 3, s_cmd_send, NULL, CLI_REST},
    {"whisper", 2, 3, s_cmd_send, NULL, CLI_REST},
    {"flood", 4, 5, s_cmd_flood, NULL, 0},
    {"quiet", 1, 1, s_cmd_quiet, NULL, 0},
    {"stats", 0, CLI_ARGS_ANY, s_cmd_stats, NULL, 0},
    {"quit", 0, CLI_ARGS_ANY, cli_console_quit, NULL, 0},
    {"info", 0, 0, s_cmd_info, NULL, 0},
    {"leader", 0, 0, s_cmd_leader, NULL, 0},
    {"kill", 2, 2, s_cmd_kill, NULL, 0},
    {"call", 4, 5, s_cmd_call, NULL, CLI_REST},
    {"conn", 2, 2, s_cmd_conn, NULL, 0},
    {"rpcstats", 0, 0, s_cmd_rpcstats, NULL, 0},
    {"confirm", 1, 1, s_cmd_confirm, NULL, 0},
    {"wait", 3, 3, s_cmd_wait, NULL, 0},
    {"reach", 2, 2, s_cmd_reach, NULL, 0},
    {NULL, 0, 0, NULL, NULL, 0},
};

//  --------------------------------------------------------------------------
//  Options and the node's life

typedef struct {
    cli_cluster_t where; //  --redis, --cluster, --id
    const char *pub, *router;
    const char *headers[64], *groups[64];
    int header_count, group_count, election;
    int64_t max_msg_size;
    int64_t metrics_port; //  -1: none
    int batch;            //  --batch: zc_mesh_set_batch
} s_options_t;

//  Takes one option other than --redis, --cluster and --id into *o.
//  Returns -1 to go on, else the exit code after saying what is wrong.
static int s_option(void *self, int option, const char *value)
{
    s_options_t *o = (s_options_t *)self;
    const char *error = NULL;
    int taken = cli_membership_option("node", option, value);
    if (taken) return taken == 1 ? -1 : taken;
    if (option == 'p')
        o->pub = value;
    else if (option == 'r')
        o->router = value;
    else if (option == 'm') {
        if (cli_args_size(value, 1, 1024L * 1024 * 1024, &o->max_msg_size))
            error = "--max-msg-size must be 1..1073741824 bytes";
    } else if (option == 'g') {
        if (o->group_count == 64)
            error = "at most 64 --group options";
        else
            o->groups[o->group_count++] = value;
    } else if (option == 'H') {
        if (o->header_count == 64 || !strchr(value, '=') || value[0] == '=')
            error = "--header takes KEY=VALUE (at most 64)";
        else
            o->headers[o->header_count++] = value;
    } else if (option == 'E')
        o->election = 0;
    else if (option == 'B')
        o->batch = 1;
    else if (option == 'M') {
        if (cli_args_number(value, 0, 65535, &o->metrics_port))
            error = "--metrics-port must be 0..65535";
    } else
        return cli_args_usage(option, s_usage);
    if (!error) return -1;
    fprintf(stderr, "zcluster node: %s\n", error);
    return CLI_USAGE;
}

//  Reads the command line into *o. Returns -1 to go on, else the exit code.
static int s_parse(int argc, char **argv, s_options_t *o)
{
    static struct option options[] = {CLI_OPTION_ID,
                                      CLI_OPTION_REDIS,
                                      CLI_OPTION_CLUSTER,
                                      CLI_OPTION_KEYS,
                                      {"pub", required_argument, 0, 'p'},
                                      {"router", required_argument, 0, 'r'},
                                      {"max-msg-size", required_argument, 0, 'm'},
                                      {"group", required_argument, 0, 'g'},
                                      CLI_OPTION_MEMBERSHIP,
                                      {"header", required_argument, 0, 'H'},
                                      {"no-election", no_argument, 0, 'E'},
                                      {"metrics-port", required_argument, 0, 'M'},
                                      {"batch", no_argument, 0, 'B'},
                                      {"help", no_argument, 0, 'h'},
                                      {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->election = 1;
    o->metrics_port = -1;
    cli_args_t args = {"i:p:r:m:g:h", options, s_usage, &o->where, "  i", s_option, o};
    int rc = cli_args_parse(&args, argc, argv);
    if (rc >= 0) return rc;
    return cli_args_none_left("node", argc, argv) ? CLI_USAGE : -1;
}

//  Publishes the node's counters to Redis (for a master's GET /metrics and
//  for zcluster top) and serves them on --metrics-port. Returns 0, or 1 if
//  the port cannot be served.
static int s_metrics_start(s_node_t *self, const s_options_t *o)
{
    self->metrics = cli_metrics_new("node", &o->where, zc_node_id(self->node), o->metrics_port);
    if (!self->metrics) return 1;
    zc_metrics_set_node(self->metrics, self->node);
    zc_metrics_set_rpc(self->metrics, self->rpc);
    return 0;
}

//  Configures and starts the cluster node, then its RPC with the console's
//  methods. Returns 0, 1 if it did not start, -1 on a bad group name.
static int s_node_start(s_node_t *self, const s_options_t *o)
{
    zc_node_t *node = self->node;
    zc_node_set_redis(node, cli_cluster_redis(&o->where));
    if (o->where.cluster) zc_node_set_cluster(node, o->where.cluster);
    zc_node_set_election(node, o->election);
    if (o->batch) zc_mesh_set_batch(zc_node_mesh(node), 1);
    for (int i = 0; i < o->header_count; i++) {
        const char *equals = strchr(o->headers[i], '=');
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(equals - o->headers[i]), o->headers[i]);
        zc_node_set_header(node, key, equals + 1);
    }
    for (int i = 0; i < o->group_count; i++)
        if (zc_node_join(node, o->groups[i])) return -1;
    zc_node_events_t events = {s_on_added, s_on_removed, s_on_promoted, s_on_demoted};
    zc_node_set_events(node, &events, NULL);
    zc_node_on_reach(node, s_on_unreachable, NULL);
    if (zc_node_start(node)) return 1;
    self->rpc = zc_rpc_new(node);
    zc_rpc_register(self->rpc, "echo", s_method_echo, NULL);
    zc_rpc_register(self->rpc, "sleep", s_method_sleep, NULL);
    zc_rpc_register(self->rpc, "fail", s_method_fail, NULL);
    return s_metrics_start(self, o);
}

//  Starts a bare mesh node. Returns 0, 1 if it did not start, -1 on a bad
//  group name.
static int s_mesh_start(s_node_t *self, const s_options_t *o)
{
    if (o->batch) zc_mesh_set_batch(self->mesh, 1);
    if (zc_mesh_start(self->mesh)) return 1;
    for (int i = 0; i < o->group_count; i++)
        if (zc_mesh_join(self->mesh, o->groups[i])) return -1;
    //  A cluster node reports `removed` instead.
    zc_mesh_on_peer_lost(self->mesh, s_on_peer_lost, NULL);
    return 0;
}

//  The console's wait: serves the network (printing what arrives) until
//  stdin has a line or a signal; SIGTERM / SIGINT (CZMQ's handler sets
//  zsys_interrupted) stop the console. The signal may reach another thread
//  (RPC handlers, the registry) and not interrupt the poll: its timeout
//  bounds how late a quiet node sees it.
static int s_wait(void *self, int stdin_open)
{
    s_node_t *node = (s_node_t *)self;
    if (zsys_interrupted) return -1;
    zmq_pollitem_t items[1 + ZC_NODE_POLLITEMS_MAX] = {{.fd = STDIN_FILENO, .events = ZMQ_POLLIN}};
    int n = 1 + (node->node ? zc_node_pollitems(node->node, items + 1)
                            : zc_mesh_pollitems(node->mesh, items + 1));
    if (zmq_poll(items + !stdin_open, n - !stdin_open, 250) < 0 && errno != EINTR) return -1;
    s_drain(node);
    cli_metrics_tick(node->metrics, &node->metrics_due);
    if (zsys_interrupted) return -1;
    return stdin_open && (items[0].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) ? 1 : 0;
}

//  Serves the network and stdin commands until quit, stdin closes or a
//  signal. A supervised node has no driver: it serves until SIGTERM.
static void s_serve(s_node_t *self)
{
    cli_console_t *console = cli_console_new(s_commands, self);
    if (!console) return;
    cli_console_set_line_max(console, LINE_MAX_BYTES);
    cli_console_set_wait(console, s_wait, zc_supervisor_managed());
    cli_console_run(console);
    cli_console_destroy(&console);
}

//  Destroys the console's RPC (completing its pending calls, printed),
//  node or mesh, and calls.
static void s_node_close(s_node_t *self)
{
    zc_metrics_destroy(&self->metrics);
    zc_rpc_destroy(&self->rpc);
    if (self->node)
        zc_node_destroy(&self->node);
    else
        zc_mesh_destroy(&self->mesh);
    while (zlist_size(self->calls)) {
        free(zlist_pop(self->calls));
        zc_rpc_call_t *call = (zc_rpc_call_t *)zlist_pop(self->calls);
        zc_rpc_call_destroy(&call);
    }
    zlist_destroy(&self->calls);
}

int cli_node(int argc, char **argv)
{
    s_options_t o;
    int rc = s_parse(argc, argv, &o);
    if (rc >= 0) return rc;
    s_node_t self = {0};
    const char *id = cli_cluster_id(&o.where);
    if (cli_cluster_redis(&o.where)) {
        self.node = zc_node_new(id);
        self.mesh = self.node ? zc_node_mesh(self.node) : NULL;
    } else
        self.mesh = zc_mesh_new(id);
    if (!self.mesh) {
        fprintf(stderr, "zcluster node: invalid node id '%s'\n", id ? id : "");
        return CLI_USAGE;
    }
    zc_mesh_set_endpoints(self.mesh, o.pub, o.router);
    if (o.max_msg_size) zc_mesh_set_max_msg_size(self.mesh, (size_t)o.max_msg_size);
    self.calls = zlist_new();
    rc = self.node ? s_node_start(&self, &o) : s_mesh_start(&self, &o);
    if (rc) {
        if (rc < 0) fprintf(stderr, "zcluster node: invalid group name\n");
        s_node_close(&self);
        return rc < 0 ? CLI_USAGE : 1;
    }
    printf("ready %s %s %s\n", zc_mesh_id(self.mesh), zc_mesh_pub_endpoint(self.mesh),
           zc_mesh_router_endpoint(self.mesh));
    if (self.metrics && zc_metrics_port(self.metrics) >= 0)
        printf("metrics %d\n", zc_metrics_port(self.metrics));
    fflush(stdout);
    cli_metrics_tick(self.metrics, &self.metrics_due);
    zc_supervisor_ready(); //  under `zcluster start`: tell the master
    s_serve(&self);
    s_node_close(&self);
    return 0;
}
