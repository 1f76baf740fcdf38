/*  zcluster node — one node driven by line commands on stdin.

    A console for people trying zcluster by hand and a driver for the
    multi-process tests: every command answers exactly one line ("ok ..." or
    "error ..."), received messages and membership events are printed as
    they arrive, so a script can wait for what it expects. With a Redis URL
    (--redis or ZC_REDIS_URL) it is a full cluster node that finds its peers
    in the registry; without, a bare mesh node whose peers are given by hand.
*/
#include "cli.h"
#include "zc_supervisor.h"
#include "zcluster.h"

#include <czmq.h>
#include <errno.h>
#include <msgpack.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

typedef struct {
    zc_node_t *node; //  NULL for a bare mesh node
    zc_rpc_t *rpc;   //  the node's RPC
    zc_mesh_t *mesh;
    int quiet; //  count received messages but do not print them
    int done;
    zlist_t *calls; //  RPC calls started here, destroyed once done and printed
} s_console_t;

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
    long ms = 0;
    if (msgpack_unpack_next(&result, (const char *)zc_rpc_request_args(request),
                            zc_rpc_request_size(request), &offset) == MSGPACK_UNPACK_SUCCESS) {
        if (result.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            ms = (long)result.data.via.u64;
        else if (result.data.type == MSGPACK_OBJECT_STR) {
            char text[32]; //  msgpack strings are not NUL-terminated
            snprintf(text, sizeof text, "%.*s", (int)result.data.via.str.size,
                     result.data.via.str.ptr);
            ms = strtol(text, NULL, 10);
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

//  call TAG TARGET METHOD TIMEOUT [TEXT]; TARGET: ID, *, *first, @CONNECTION
static int s_call(s_console_t *console, char **w, int n)
{
    const char *target = w[2];
    zc_rpc_target_t kind = strcmp(target, "*") == 0        ? ZC_RPC_ALL_GATHER
                           : strcmp(target, "*first") == 0 ? ZC_RPC_ALL_FIRST
                           : target[0] == '@'              ? ZC_RPC_CONNECTION
                                                           : ZC_RPC_NODE;
    const char *to = kind == ZC_RPC_CONNECTION ? target + 1 : kind == ZC_RPC_NODE ? target : NULL;
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    const char *text = n > 5 ? w[5] : "";
    msgpack_pack_str(&pk, strlen(text));
    msgpack_pack_str_body(&pk, text, strlen(text));
    //  The tag lives as long as the call: keep a copy in the calls list.
    char *tag = strdup(w[1]);
    zlist_append(console->calls, tag);
    zc_rpc_call_t *call = zc_rpc_start(console->rpc, kind, to, w[3], sbuf.data, sbuf.size,
                                       atoi(w[4]), s_print_call, tag);
    zlist_append(console->calls, call);
    msgpack_sbuffer_destroy(&sbuf);
    return 0;
}

//  Destroys the calls that are done (they were printed when they completed).
static void s_reap_calls(s_console_t *console)
{
    if (!console->calls) return;
    zlist_t *keep = zlist_new();
    while (zlist_size(console->calls) >= 2) {
        char *tag = (char *)zlist_pop(console->calls);
        zc_rpc_call_t *call = (zc_rpc_call_t *)zlist_pop(console->calls);
        if (zc_rpc_call_done(call)) {
            zc_rpc_call_destroy(&call);
            free(tag);
        } else {
            zlist_append(keep, tag);
            zlist_append(keep, call);
        }
    }
    zlist_destroy(&console->calls);
    console->calls = keep;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: zcluster node [--id ID] [--pub ENDPOINT] [--router ENDPOINT]\n"
            "                     [--max-msg-size BYTES] [--group NAME]...\n"
            "                     [--redis URL] [--cluster NAME] [--lease-ttl MS]\n"
            "                     [--header KEY=VALUE]... [--no-election]\n\n"
            "Starts a node, prints `ready ID PUB-ENDPOINT ROUTER-ENDPOINT`, then reads\n"
            "commands on stdin, one per line; each answers one line, `ok ...` or `error ...`.\n"
            "With --redis (or ZC_REDIS_URL) the node joins the cluster through the Redis\n"
            "registry; otherwise peers are added by hand with `peer`.\n"
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
            "`added ID`, `removed ID left|expired|crashed`, `promoted EPOCH`, `demoted EPOCH`.\n");
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

static void s_print_stats(zc_mesh_t *mesh)
{
    zc_mesh_stats_t s;
    zc_mesh_stats(mesh, &s);
    printf("stats sent_public=%" PRIu64 " sent_group=%" PRIu64 " sent_private=%" PRIu64
           " recv_public=%" PRIu64 " recv_group=%" PRIu64 " recv_private=%" PRIu64
           " bytes_sent=%" PRIu64 " bytes_received=%" PRIu64 " lost=%" PRIu64 " malformed=%" PRIu64
           " bad_version=%" PRIu64 " oversized=%" PRIu64 " send_dropped=%" PRIu64
           " no_route=%" PRIu64 " peers_lost=%" PRIu64 " peers=%zu\n",
           s.sent_public, s.sent_group, s.sent_private, s.recv_public, s.recv_group, s.recv_private,
           s.bytes_sent, s.bytes_received, s.lost, s.malformed, s.bad_version, s.oversized,
           s.send_dropped, s.no_route, s.peers_lost, zc_mesh_peer_count(mesh));
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

static zc_msg_t *s_recv(s_console_t *console, int timeout_ms)
{
    return console->node ? zc_node_recv(console->node, timeout_ms)
                         : zc_mesh_recv(console->mesh, timeout_ms);
}

//  Drains whatever has arrived, printing it unless quiet.
static void s_drain(s_console_t *console)
{
    zc_msg_t *msg;
    while ((msg = s_recv(console, 0)) != NULL)
        if (!console->quiet) s_print_msg(msg);
    s_reap_calls(console);
    fflush(stdout);
}

//  Sends count messages of size bytes; private sends wait while the peer's
//  queue is full. Returns 0 or -1 with errno.
static int s_flood(s_console_t *console, const char *kind, const char *target, const char *type,
                   long count, long size)
{
    if (count < 0 || size < 0 || size > 64 * 1024 * 1024) {
        errno = EINVAL;
        return -1;
    }
    char *payload = (char *)malloc((size_t)size + 1);
    if (!payload) return -1;
    memset(payload, 'x', (size_t)size);
    int rc = 0;
    for (long i = 0; i < count && rc == 0; i++) {
        if (strcmp(kind, "public") == 0)
            rc = zc_mesh_publish(console->mesh, type, payload, (size_t)size);
        else if (strcmp(kind, "group") == 0)
            rc = zc_mesh_shout(console->mesh, target, type, payload, (size_t)size);
        else if (strcmp(kind, "private") == 0) {
            while ((rc = zc_mesh_whisper(console->mesh, target, type, payload, (size_t)size)) !=
                       0 &&
                   errno == EAGAIN)
                s_recv(console, 1);
        } else {
            errno = EINVAL;
            rc = -1;
        }
    }
    free(payload);
    return rc;
}

//  Splits line into at most max words; the last word takes the rest of the line.
static int s_split(char *line, char **words, int max)
{
    int n = 0;
    char *p = line;
    while (*p && n < max) {
        while (*p == ' ')
            p++;
        if (!*p) break;
        words[n++] = p;
        if (n == max) break;
        while (*p && *p != ' ')
            p++;
        if (*p) *p++ = 0;
    }
    return n;
}

static void s_reply(const char *command, int rc)
{
    if (rc == 0)
        printf("ok %s\n", command);
    else
        printf("error %s: %s\n", command, errno ? strerror(errno) : "invalid arguments");
}

//  Answers a command of the RPC: its failures say why on the rpc.
static void s_reply_rpc(const char *command, int rc, zc_rpc_t *rpc)
{
    if (rc == 0)
        printf("ok %s\n", command);
    else
        printf("error %s: %s\n", command, zc_rpc_errstr(rpc));
}

//  Commands that need the registry. Returns 1 if it was one (and answered).
static int s_execute_cluster(s_console_t *console, char **w, int n)
{
    zc_node_t *node = console->node;
    const char *cmd = w[0];
    if (strcmp(cmd, "info") == 0 && n == 1) {
        char *info = zc_node_cluster_info(node);
        printf("ok info %s\n", info);
        free(info);
    } else if (strcmp(cmd, "leader") == 0 && n == 1)
        printf("ok leader %d %" PRIu64 "\n", zc_node_leader(node), zc_node_epoch(node));
    else if (strcmp(cmd, "kill") == 0 && n == 3)
        s_reply(cmd, zc_node_kill(node, w[1], atoi(w[2])));
    else if (strcmp(cmd, "call") == 0 && (n == 5 || n == 6))
        s_reply(cmd, s_call(console, w, n));
    else if (strcmp(cmd, "conn") == 0 && n == 3 && strcmp(w[1], "add") == 0)
        s_reply_rpc(cmd, zc_rpc_connection_add(console->rpc, w[2]), console->rpc);
    else if (strcmp(cmd, "conn") == 0 && n == 3 && strcmp(w[1], "remove") == 0)
        s_reply_rpc(cmd, zc_rpc_connection_remove(console->rpc, w[2]), console->rpc);
    else if (strcmp(cmd, "rpcstats") == 0 && n == 1) {
        zc_rpc_stats_t st;
        zc_rpc_stats(console->rpc, &st);
        printf("rpcstats calls_started=%" PRIu64 " calls_ok=%" PRIu64 " calls_failed=%" PRIu64
               " calls_timed_out=%" PRIu64 " requests_handled=%" PRIu64 " late_replies=%" PRIu64
               "\n",
               st.calls_started, st.calls_ok, st.calls_failed, st.calls_timed_out,
               st.requests_handled, st.late_replies);
    } else if (strcmp(cmd, "confirm") == 0 && n == 2)
        s_reply(cmd, zc_node_confirm(node, w[1]));
    else if (strcmp(cmd, "wait") == 0 && n == 4) {
        zlist_t *ids = zc_node_wait_confirmations(node, w[1], (size_t)atol(w[2]), atoi(w[3]));
        if (!ids)
            printf("error wait: timed out\n");
        else {
            printf("ok wait ");
            int first = 1;
            for (char *id = (char *)zlist_first(ids); id; id = (char *)zlist_next(ids)) {
                printf("%s%s", first ? "" : ",", id);
                first = 0;
            }
            printf("\n");
            zlist_destroy(&ids);
        }
    } else
        return 0;
    fflush(stdout);
    return 1;
}

static void s_execute(s_console_t *console, char *line)
{
    char *p = line + strspn(line, " ");
    if (!*p) return;
    char *w[7] = {p};
    const char *cmd = p;
    p += strcspn(p, " ");
    if (*p) *p++ = 0;
    //  Message commands keep the rest of the line, spaces and all, as text.
    int words = strcmp(cmd, "publish") == 0                                ? 2
                : strcmp(cmd, "shout") == 0 || strcmp(cmd, "whisper") == 0 ? 3
                : strcmp(cmd, "call") == 0                                 ? 5
                                                                           : 6;
    int n = 1 + s_split(p, w + 1, words);
    zc_mesh_t *mesh = console->mesh;
    int rc = -1;
    errno = 0;
    if (strcmp(cmd, "peer") == 0 && (n == 4 || n == 5))
        rc = zc_mesh_peer_add(mesh, w[1], w[2], w[3], n == 5 ? w[4] : NULL);
    else if (strcmp(cmd, "unpeer") == 0 && n == 2)
        rc = zc_mesh_peer_remove(mesh, w[1]);
    else if (strcmp(cmd, "join") == 0 && n == 2)
        rc = console->node ? zc_node_join(console->node, w[1]) : zc_mesh_join(mesh, w[1]);
    else if (strcmp(cmd, "leave") == 0 && n == 2)
        rc = console->node ? zc_node_leave(console->node, w[1]) : zc_mesh_leave(mesh, w[1]);
    else if (console->node && s_execute_cluster(console, w, n))
        return;
    else if (strcmp(cmd, "publish") == 0 && n >= 2) {
        rc = zc_mesh_publish(mesh, w[1], n > 2 ? w[2] : "", n > 2 ? strlen(w[2]) : 0);
    } else if (strcmp(cmd, "shout") == 0 && n >= 3) {
        rc = zc_mesh_shout(mesh, w[1], w[2], n > 3 ? w[3] : "", n > 3 ? strlen(w[3]) : 0);
    } else if (strcmp(cmd, "whisper") == 0 && n >= 3) {
        rc = zc_mesh_whisper(mesh, w[1], w[2], n > 3 ? w[3] : "", n > 3 ? strlen(w[3]) : 0);
    } else if (strcmp(cmd, "flood") == 0 && n >= 5) {
        int targeted = strcmp(w[1], "public") != 0;
        if (n == 5 + targeted)
            rc = s_flood(console, w[1], targeted ? w[2] : NULL, w[2 + targeted],
                         atol(w[3 + targeted]), atol(w[4 + targeted]));
    } else if (strcmp(cmd, "quiet") == 0 && n == 2) {
        console->quiet = strcmp(w[1], "on") == 0;
        rc = 0;
    } else if (strcmp(cmd, "stats") == 0) {
        s_drain(console);
        s_print_stats(mesh);
        fflush(stdout);
        return;
    } else if (strcmp(cmd, "quit") == 0) {
        console->done = 1;
        rc = 0;
    } else {
        printf("error %s: unknown command or wrong arguments\n", cmd);
        fflush(stdout);
        return;
    }
    s_reply(cmd, rc);
    fflush(stdout);
}

typedef struct {
    const char *id, *pub, *router, *redis, *cluster;
    const char *headers[64], *groups[64];
    int header_count, group_count, lease_ttl, election;
    long max_msg_size;
} s_options_t;

//  Reads the command line into *o. Returns -1 to go on, else the exit code.
static int s_parse(int argc, char **argv, s_options_t *o)
{
    static struct option options[] = {
        {"id", required_argument, 0, 'i'},      {"pub", required_argument, 0, 'p'},
        {"router", required_argument, 0, 'r'},  {"max-msg-size", required_argument, 0, 'm'},
        {"group", required_argument, 0, 'g'},   {"redis", required_argument, 0, 'R'},
        {"cluster", required_argument, 0, 'C'}, {"lease-ttl", required_argument, 0, 'L'},
        {"header", required_argument, 0, 'H'},  {"no-election", no_argument, 0, 'E'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->redis = getenv("ZC_REDIS_URL");
    o->election = 1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "i:p:r:m:g:h", options, NULL)) != -1) {
        const char *error = NULL;
        if (c == 'i')
            o->id = optarg;
        else if (c == 'p')
            o->pub = optarg;
        else if (c == 'r')
            o->router = optarg;
        else if (c == 'm') {
            o->max_msg_size = atol(optarg);
            if (o->max_msg_size <= 0 || o->max_msg_size > 1024L * 1024 * 1024)
                error = "--max-msg-size must be 1..1073741824 bytes";
        } else if (c == 'g') {
            if (o->group_count == 64)
                error = "at most 64 --group options";
            else
                o->groups[o->group_count++] = optarg;
        } else if (c == 'R')
            o->redis = optarg;
        else if (c == 'C')
            o->cluster = optarg;
        else if (c == 'L') {
            o->lease_ttl = atoi(optarg);
            if (o->lease_ttl < 300) error = "--lease-ttl must be at least 300 ms";
        } else if (c == 'H') {
            if (o->header_count == 64 || !strchr(optarg, '=') || optarg[0] == '=')
                error = "--header takes KEY=VALUE (at most 64)";
            else
                o->headers[o->header_count++] = optarg;
        } else if (c == 'E')
            o->election = 0;
        else if (c == 'h') {
            s_usage(stdout);
            return 0;
        } else {
            s_usage(stderr);
            return CLI_USAGE;
        }
        if (error) {
            fprintf(stderr, "zcluster node: %s\n", error);
            return CLI_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "zcluster node: unexpected argument '%s'\n", argv[optind]);
        return CLI_USAGE;
    }
    return -1;
}

//  Configures and starts the cluster node, then its RPC with the console's
//  methods. Returns 0, 1 if it did not start, -1 on a bad group name.
static int s_node_start(s_console_t *console, const s_options_t *o)
{
    zc_node_t *node = console->node;
    zc_node_set_redis(node, o->redis);
    if (o->cluster) zc_node_set_cluster(node, o->cluster);
    if (o->lease_ttl) zc_node_set_lease_ttl(node, o->lease_ttl);
    zc_node_set_election(node, o->election);
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
    if (zc_node_start(node)) return 1;
    console->rpc = zc_rpc_new(node);
    zc_rpc_register(console->rpc, "echo", s_method_echo, NULL);
    zc_rpc_register(console->rpc, "sleep", s_method_sleep, NULL);
    zc_rpc_register(console->rpc, "fail", s_method_fail, NULL);
    return 0;
}

//  Starts a bare mesh node. Returns 0, 1 if it did not start, -1 on a bad
//  group name.
static int s_mesh_start(s_console_t *console, const s_options_t *o)
{
    if (zc_mesh_start(console->mesh)) return 1;
    for (int i = 0; i < o->group_count; i++)
        if (zc_mesh_join(console->mesh, o->groups[i])) return -1;
    //  A cluster node reports `removed` instead.
    zc_mesh_on_peer_lost(console->mesh, s_on_peer_lost, NULL);
    return 0;
}

//  Executes the complete lines in buffer[0..used); returns the bytes left
//  (a line not complete yet).
static size_t s_execute_lines(s_console_t *console, char *buffer, size_t used)
{
    char *start = buffer, *eol;
    while (!console->done && (eol = memchr(start, '\n', used - (size_t)(start - buffer)))) {
        *eol = 0;
        if (eol > start && eol[-1] == '\r') eol[-1] = 0;
        s_execute(console, start);
        start = eol + 1;
    }
    used -= (size_t)(start - buffer);
    memmove(buffer, start, used);
    if (used == LINE_MAX_BYTES) {
        printf("error line longer than %d bytes\n", LINE_MAX_BYTES - 1);
        fflush(stdout);
        used = 0;
    }
    return used;
}

//  Serves the network and stdin commands until quit, stdin closes or a
//  signal. SIGTERM / SIGINT (CZMQ's handler sets zsys_interrupted) leave
//  gracefully.
static void s_serve(s_console_t *console)
{
    char buffer[LINE_MAX_BYTES];
    size_t used = 0;
    int stdin_open = 1;
    while (!console->done && !zsys_interrupted) {
        zmq_pollitem_t items[1 + ZC_NODE_POLLITEMS_MAX] = {
            {.fd = STDIN_FILENO, .events = ZMQ_POLLIN}};
        int n = 1 + (console->node ? zc_node_pollitems(console->node, items + 1)
                                   : zc_mesh_pollitems(console->mesh, items + 1));
        if (zmq_poll(items + !stdin_open, n - !stdin_open, -1) < 0 && errno != EINTR) break;
        s_drain(console);
        if (!stdin_open || !(items[0].revents & (ZMQ_POLLIN | ZMQ_POLLERR))) continue;
        ssize_t got = read(STDIN_FILENO, buffer + used, sizeof buffer - used);
        if (got <= 0 && zc_supervisor_managed()) {
            stdin_open = 0; //  a supervised worker has no driver: serve until SIGTERM
            continue;
        }
        if (got <= 0) break; //  stdin closed: the driver is gone
        used = s_execute_lines(console, buffer, used + (size_t)got);
    }
}

//  Destroys the console's RPC (completing its pending calls, printed),
//  node or mesh, and calls.
static void s_console_close(s_console_t *console)
{
    zc_rpc_destroy(&console->rpc);
    if (console->node)
        zc_node_destroy(&console->node);
    else
        zc_mesh_destroy(&console->mesh);
    while (zlist_size(console->calls)) {
        free(zlist_pop(console->calls));
        zc_rpc_call_t *call = (zc_rpc_call_t *)zlist_pop(console->calls);
        zc_rpc_call_destroy(&call);
    }
    zlist_destroy(&console->calls);
}

int cli_node(int argc, char **argv)
{
    s_options_t o;
    int rc = s_parse(argc, argv, &o);
    if (rc >= 0) return rc;
    s_console_t console = {0};
    if (o.redis && *o.redis) {
        console.node = zc_node_new(o.id);
        console.mesh = console.node ? zc_node_mesh(console.node) : NULL;
    } else
        console.mesh = zc_mesh_new(o.id);
    if (!console.mesh) {
        fprintf(stderr, "zcluster node: invalid node id '%s'\n", o.id);
        return CLI_USAGE;
    }
    zc_mesh_set_endpoints(console.mesh, o.pub, o.router);
    if (o.max_msg_size) zc_mesh_set_max_msg_size(console.mesh, (size_t)o.max_msg_size);
    console.calls = zlist_new();
    rc = console.node ? s_node_start(&console, &o) : s_mesh_start(&console, &o);
    if (rc) {
        if (rc < 0) fprintf(stderr, "zcluster node: invalid group name\n");
        s_console_close(&console);
        return rc < 0 ? CLI_USAGE : 1;
    }
    zc_mesh_t *mesh = console.mesh;
    printf("ready %s %s %s\n", zc_mesh_id(mesh), zc_mesh_pub_endpoint(mesh),
           zc_mesh_router_endpoint(mesh));
    fflush(stdout);
    zc_supervisor_ready(); //  under `zcluster start`: tell the master
    s_serve(&console);
    s_console_close(&console);
    return 0;
}
