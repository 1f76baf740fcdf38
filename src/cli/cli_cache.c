/*  zcluster cache — the shared cache from the command line.

    With a command after the options it runs that one command and prints its
    result, for scripts and people. Without one it is a console: it reads
    commands on stdin, one per line, and answers each with exactly one line,
    `ok CMD [RESULT]` or `error CMD: KIND: MESSAGE`, the convention of
    `zcluster node`, so tests and other programs can drive a cache node.

    The console is not a long-running command: it does nothing but answer
    its driver, and has no work of its own to keep doing. Under `zcluster
    start`, whose workers get /dev/null as stdin, it would say ready and end
    at once, in a respawn loop; so there it refuses at once, saying why
    (exit 64): a master is for `zcluster worker` and `zcluster node`. One
    command given on the command line runs anywhere.

    Values typed here are text and are stored as a msgpack str; values
    written by other programs print as text if they are a str and in
    msgpack-c's notation otherwise, with control characters escaped so a
    value never breaks the one-line answer.
*/
#include "cli.h"
#include "cli_args.h"
#include "cli_console.h"
#include "cli_render.h"
#include "zc_cache.h"
#include "zc_supervisor.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: zcluster cache [--redis URL] [--cluster NAME] [--id NODE_ID] [COMMAND ARGS]\n"
            "\n"
            "Uses the cluster's shared cache in Redis (--redis defaults to $ZC_REDIS_URL,\n"
            "--cluster to $ZC_CLUSTER or \"zcluster\"; --id names this node as lock owner).\n"
            "With a COMMAND, runs it once and prints its result. Without one, prints\n"
            "`ready NODE_ID CLUSTER` and reads commands on stdin, one per line, answering\n"
            "each with one line: `ok COMMAND [RESULT]` or `error COMMAND: KIND: MESSAGE`.\n"
            "Under `zcluster start` (stdin /dev/null) the console refuses to start (exit 64).\n"
            "\n"
            "commands:\n"
            "  save KEY VALUE [TTL_MS]        store VALUE (text, as a msgpack str)\n"
            "  load KEY [slide=MS] [wait=MS]  print the value; slide its TTL; wait for a lock\n"
            "  destroy KEY                    remove a value or list\n"
            "  ttl KEY                        remaining time to live in ms, -1 if none\n"
            "  push KEY VALUE                 append VALUE to the list at KEY\n"
            "  pop KEY [WAIT_MS]              remove and print the list's first item\n"
            "  length KEY                     number of items in the list\n"
            "  lock KEY TTL_MS                take or extend KEY's lock for this node\n"
            "  unlock KEY                     release it\n"
            "  locked KEY                     the id of the node holding the lock, or -\n"
            "  keys [PATTERN]                 keys matching a glob (default *); no locks\n"
            "  locks [PATTERN]                locks on keys matching a glob: KEY OWNER TTL_MS\n"
            "  size                           number of keys\n"
            "  clear                          remove every key not locked by another node\n"
            "  dump FILE                      write every key with its TTL to FILE\n"
            "  restore FILE                   write FILE's keys back, all or nothing\n"
            "  id                             this node's id\n"
            "  quit                           (console) stop\n"
            "\n"
            "exit status: 0 ok, 1 the command failed, 64 usage error\n");
}

//  Packs text as a msgpack str into a malloc'd buffer.
static void *s_pack_text(const char *text, size_t *size_p)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer packer;
    msgpack_packer_init(&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_str_with_body(&packer, text, strlen(text));
    *size_p = buffer.size;
    return msgpack_sbuffer_release(&buffer);
}

//  The KIND word of an answer: zc_strerror's name, except for the kinds
//  whose word this console printed before zc_error.h existed (scripts and
//  tests match these words).
static const char *s_kind(zc_error_t kind)
{
    switch (kind) {
    case ZC_ERR_TYPE:
        return "wrong type";
    case ZC_ERR_REDIS:
        return "redis error";
    case ZC_ERR_IO:
        return "i/o error";
    default:
        return zc_strerror(kind);
    }
}

//  --------------------------------------------------------------------------
//  Commands

//  What the commands work on; self of the console.
typedef struct {
    zc_cache_t *cache;
    char sep;    //  between the keys of `keys`: ' ' in the console, '\n' once
    int console; //  1 in the console, where `quit` is a command
} s_client_t;

//  Answers a cache call: ok, or the cache's KIND: MESSAGE. Returns 0.
static int s_answer(cli_console_t *console, s_client_t *client, int rc)
{
    if (rc)
        cli_console_error(console, "%s: %s", s_kind(zc_cache_error(client->cache)),
                          zc_cache_errstr(client->cache));
    return 0;
}

//  Closes out, a memory stream over *text_p holding a value or keys for
//  display (no NUL: control bytes are escaped), and answers ok with it, or
//  "out of memory" if there was no stream. Returns 0.
static int s_answer_rendered(cli_console_t *console, FILE *out, char **text_p)
{
    if (!out) {
        cli_console_error(console, "%s: out of memory", s_kind(ZC_ERR_IO));
        return 0;
    }
    fclose(out);
    cli_console_ok(console, "%s", *text_p ? *text_p : "");
    free(*text_p);
    return 0;
}

//  Answers ok with a value rendered for display. Returns 0.
static int s_answer_value(cli_console_t *console, const void *value, size_t size)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out) cli_render_msgpack(out, value, size);
    return s_answer_rendered(console, out, &text);
}

//  save KEY VALUE [TTL_MS]
static int s_cmd_save(cli_console_t *console, void *self, int argc, char **argv)
{
    s_client_t *client = (s_client_t *)self;
    int64_t ttl = 0;
    if (argc == 4 && cli_args_number(argv[3], 0, INT64_MAX, &ttl)) return -1;
    size_t size;
    void *value = s_pack_text(argv[2], &size);
    int rc = zc_cache_save(client->cache, argv[1], value, size, ttl);
    free(value);
    return s_answer(console, client, rc);
}

//  load KEY [slide=MS] [wait=MS]
static int s_cmd_load(cli_console_t *console, void *self, int argc, char **argv)
{
    s_client_t *client = (s_client_t *)self;
    zc_cache_load_opts_t opts = {0};
    for (int i = 2; i < argc; i++) {
        int64_t *field = strncmp(argv[i], "slide=", 6) == 0  ? &opts.slide_ms
                         : strncmp(argv[i], "wait=", 5) == 0 ? &opts.wait_ms
                                                             : NULL;
        if (!field || cli_args_number(strchr(argv[i], '=') + 1, 0, INT64_MAX, field)) return -1;
    }
    void *value = NULL;
    size_t size = 0;
    int rc = zc_cache_load(client->cache, argv[1], &opts, &value, &size);
    rc = rc ? s_answer(console, client, rc) : s_answer_value(console, value, size);
    free(value);
    return rc;
}

//  destroy KEY
static int s_cmd_destroy(cli_console_t *console, void *self, int argc, char **argv)
{
    s_client_t *client = (s_client_t *)self;
    return s_answer(console, client, zc_cache_destroy_key(client->cache, argv[1]));
}

//  ttl KEY
static int s_cmd_ttl(cli_console_t *console, void *self, int argc, char **argv)
{
    s_client_t *client = (s_client_t *)self;
    int64_t ttl;
    int rc = zc_cache_ttl(client->cache, argv[1], &ttl);
    if (rc == 0) cli_console_ok(console, "%" PRId64, ttl);
    return s_answer(console, client, rc);
}

//  push KEY VALUE
static int s_cmd_push(cli_console_t *console, void *self, int argc, char **argv)
{
    s_client_t *client = (s_client_t *)self;
    size_t size;
    void *value = s_pack_text(argv[2], &size);
    int rc = zc_cache_push(client->cache, argv[1], value, size);
    free(value);
    return s_answer(console, client, rc);
}

//  pop KEY [WAIT_MS]
static int s_cmd_pop(cli_console_t *console, void *self, int argc, char **argv)
{
    s_client_t *client = (s_client_t *)self;
    int64_t wait = 0;
    if (argc == 3 && cli_args_number(argv[2], 0, INT64_MAX, &wait)) return -1;
    void *value = NULL;
    size_t size = 0;
    int rc = wait > 0 ? zc_cache_pop_wait(client->cache, argv[1], wait, &value, &size)
                      : zc_cache_pop(client->cache, argv[1], &value, &size);
    rc = rc ? s_answer(console, client, rc) : s_answer_value(console, value, size);
    free(value);
    return rc;
}

//  length KEY
static int s_cmd_length(cli_console_t *console, void *self, int argc, char **argv)
{
    s_client_t *client = (s_client_t *)self;
    size_t length;
    int rc = zc_cache_length(client->cache, argv[1], &length);
    if (rc == 0) cli_console_ok(console, "%zu", length);
    return s_answer(console, client, rc);
}

//  lock KEY TTL_MS
static int s_cmd_lock(cli_console_t *console, void *self, int argc, char **argv)
{
    s_client_t *client = (s_client_t *)self;
    int64_t ttl;
    if (cli_args_number(argv[2], 1, INT64_MAX, &ttl)) return -1;
    return s_answer(console, client, zc_cache_lock(client->cache, argv[1], ttl));
}

//  unlock KEY
static int s_cmd_unlock(cli_console_t *console, void *self, int argc, char **argv)
{
    s_client_t *client = (s_client_t *)self;
    return s_answer(console, client, zc_cache_unlock(client->cache, argv[1]));
}

//  locked KEY
static int s_cmd_locked(cli_console_t *console, void *self, int argc, char **argv)
{
    s_client_t *client = (s_client_t *)self;
    char *owner = NULL;
    int rc = zc_cache_locked(client->cache, argv[1], &owner);
    if (rc == 0) cli_console_ok(console, "%s", owner ? owner : "-");
    free(owner);
    return s_answer(console, client, rc);
}

//  keys [PATTERN]
static int s_cmd_keys(cli_console_t *console, void *self, int argc, char **argv)
{
    s_client_t *client = (s_client_t *)self;
    char **keys = NULL;
    if (zc_cache_keys(client->cache, argc == 2 ? argv[1] : NULL, &keys, NULL))
        return s_answer(console, client, -1);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    for (size_t i = 0; out && keys[i]; i++) {
        if (i) fputc(client->sep, out);
        cli_render_text(out, keys[i], strlen(keys[i]));
    }
    zc_cache_keys_free(&keys);
    return s_answer_rendered(console, out, &text);
}

//  locks [PATTERN]: KEY OWNER TTL_MS per lock
static int s_cmd_locks(cli_console_t *console, void *self, int argc, char **argv)
{
    s_client_t *client = (s_client_t *)self;
    zc_cache_lock_info_t *locks = NULL;
    size_t count = 0;
    if (zc_cache_locks(client->cache, argc == 2 ? argv[1] : NULL, &locks, &count))
        return s_answer(console, client, -1);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    for (size_t i = 0; out && i < count; i++) {
        if (i) fputc(client->sep, out);
        cli_render_text(out, locks[i].key, strlen(locks[i].key));
        fputc(' ', out);
        const char *owner = *locks[i].owner ? locks[i].owner : "-"; //  "": damaged data
        cli_render_text(out, owner, strlen(owner));
        fprintf(out, " %" PRId64, locks[i].ttl_ms);
    }
    zc_cache_locks_free(&locks, count);
    return s_answer_rendered(console, out, &text);
}

//  size
static int s_cmd_size(cli_console_t *console, void *self, int argc, char **argv)
{
    s_client_t *client = (s_client_t *)self;
    size_t count;
    int rc = zc_cache_size(client->cache, &count);
    if (rc == 0) cli_console_ok(console, "%zu", count);
    return s_answer(console, client, rc);
}

//  clear
static int s_cmd_clear(cli_console_t *console, void *self, int argc, char **argv)
{
    s_client_t *client = (s_client_t *)self;
    size_t removed;
    int rc = zc_cache_clear(client->cache, &removed);
    if (rc == 0) cli_console_ok(console, "removed=%zu", removed);
    return s_answer(console, client, rc);
}

//  dump FILE | restore FILE
static int s_cmd_dump_or_restore(cli_console_t *console, void *self, int argc, char **argv)
{
    s_client_t *client = (s_client_t *)self;
    size_t count;
    int rc = strcmp(argv[0], "dump") == 0 ? zc_cache_dump(client->cache, argv[1], &count)
                                          : zc_cache_restore(client->cache, argv[1], &count);
    if (rc == 0) cli_console_ok(console, "count=%zu", count);
    return s_answer(console, client, rc);
}

//  id
static int s_cmd_id(cli_console_t *console, void *self, int argc, char **argv)
{
    cli_console_ok(console, "%s", zc_cache_owner(((s_client_t *)self)->cache));
    return 0;
}

//  quit (in the console only)
static int s_cmd_quit(cli_console_t *console, void *self, int argc, char **argv)
{
    return ((s_client_t *)self)->console ? cli_console_quit(console, self, argc, argv) : -1;
}

static const cli_command_t s_commands[] = {
    {"save", 2, 3, s_cmd_save, NULL, 0},
    {"load", 1, 3, s_cmd_load, NULL, 0},
    {"destroy", 1, 1, s_cmd_destroy, NULL, 0},
    {"ttl", 1, 1, s_cmd_ttl, NULL, 0},
    {"push", 2, 2, s_cmd_push, NULL, 0},
    {"pop", 1, 2, s_cmd_pop, NULL, 0},
    {"length", 1, 1, s_cmd_length, NULL, 0},
    {"lock", 2, 2, s_cmd_lock, NULL, 0},
    {"unlock", 1, 1, s_cmd_unlock, NULL, 0},
    {"locked", 1, 1, s_cmd_locked, NULL, 0},
    {"keys", 0, 1, s_cmd_keys, NULL, 0},
    {"locks", 0, 1, s_cmd_locks, NULL, 0},
    {"size", 0, 0, s_cmd_size, NULL, 0},
    {"clear", 0, 0, s_cmd_clear, NULL, 0},
    {"dump", 1, 1, s_cmd_dump_or_restore, NULL, 0},
    {"restore", 1, 1, s_cmd_dump_or_restore, NULL, 0},
    {"id", 0, 0, s_cmd_id, NULL, 0},
    {"quit", 0, CLI_ARGS_ANY, s_cmd_quit, NULL, 0},
    {NULL, 0, 0, NULL, NULL, 0},
};

//  Reads the options into *where. Returns -1 to go on, or the exit code.
static int s_parse(cli_cluster_t *where, int argc, char **argv)
{
    static struct option options[] = {CLI_OPTION_REDIS,
                                      CLI_OPTION_CLUSTER,
                                      CLI_OPTION_ID,
                                      {"help", no_argument, 0, 'h'},
                                      {0, 0, 0, 0}};
    //  "+": options end at the first command word, so values may start with '-'.
    cli_args_t args = {"+r:c:i:h", options, s_usage, where, "rci", NULL, NULL};
    int rc = cli_args_parse(&args, argc, argv);
    if (rc >= 0) return rc;
    return cli_cluster_need_redis(where, "cache") ? -1 : CLI_USAGE;
}

int cli_cache(int argc, char **argv)
{
    cli_cluster_t where = {0};
    int status = s_parse(&where, argc, argv);
    if (status >= 0) return status;
    if (optind == argc && zc_supervisor_managed() && cli_console_stdin_null()) {
        fprintf(stderr, "zcluster cache: no console under a master: its stdin is /dev/null, so "
                        "no command would ever come; run one command (zcluster cache COMMAND "
                        "ARGS), or supervise zcluster worker or zcluster node\n");
        return CLI_USAGE;
    }
    zc_cache_t *cache = zc_cache_new(cli_cluster_redis(&where), where.cluster, where.id);
    if (!cache) return 1; //  a bad URL or name: the reason is logged
    s_client_t client = {cache, optind == argc ? ' ' : '\n', optind == argc};
    cli_console_t *console = cli_console_new(s_commands, &client);
    status = console ? 0 : 1;
    if (console && client.console) {
        printf("ready %s %s\n", zc_cache_owner(cache), zc_cache_cluster(cache));
        fflush(stdout);
        cli_console_set_wrong_args(console, "usage: unknown command or wrong arguments");
        cli_console_run(console);
    } else if (console)
        status =
            cli_console_run_once(console, "zcluster cache", s_usage, argc - optind, argv + optind);
    cli_console_destroy(&console);
    zc_cache_destroy(&cache);
    return status;
}
