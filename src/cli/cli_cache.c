/*  zcluster cache — the shared cache from the command line.

    With a command after the options it runs that one command and prints its
    result, for scripts and people. Without one it is a console: it reads
    commands on stdin, one per line, and answers each with exactly one line,
    `ok CMD [RESULT]` or `error CMD: KIND: MESSAGE`, the convention of
    `zcluster node`, so tests and other programs can drive a cache node.

    Values typed here are text and are stored as a msgpack str; values
    written by other programs print as text if they are a str and in
    msgpack-c's notation otherwise, with control characters escaped so a
    value never breaks the one-line answer.
*/
#include "cli.h"
#include "zc_cache.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_USAGE   1000 //  s_execute's code for wrong arguments
#define S_NOMEM   1001 //  s_execute_captured's code when no answer can be captured
#define S_MAXARGS 8

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
            "  keys [PATTERN]                 keys matching a glob (default *)\n"
            "  size                           number of keys\n"
            "  clear                          remove every key not locked by another node\n"
            "  dump FILE                      write every key with its TTL to FILE\n"
            "  restore FILE                   write FILE's keys back, all or nothing\n"
            "  id                             this node's id\n"
            "  quit                           (console) stop\n"
            "\n"
            "exit status: 0 ok, 1 the command failed, 64 usage error\n");
}

//  Parses a whole decimal integer >= min. Returns 0 or -1.
static int s_parse_int(const char *text, int64_t min, int64_t *value)
{
    char *end;
    errno = 0;
    long long n = strtoll(text, &end, 10);
    if (errno || end == text || *end || n < min) return -1;
    *value = n;
    return 0;
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

//  Appends text to out with control characters, backslash and DEL escaped.
static void s_escape(FILE *out, const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\\')
            fputs("\\\\", out);
        else if (c == '\n')
            fputs("\\n", out);
        else if (c == '\t')
            fputs("\\t", out);
        else if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
}

//  Writes a msgpack value (already checked to be one object) for display.
static void s_render(FILE *out, const void *value, size_t size)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    size_t offset = 0;
    if (msgpack_unpack_next(&unpacked, (const char *)value, size, &offset) !=
        MSGPACK_UNPACK_SUCCESS) {
        //  Valid but beyond msgpack-c's nesting limit: show the bytes.
        fputs("0x", out);
        for (size_t i = 0; i < size; i++)
            fprintf(out, "%02x", ((const unsigned char *)value)[i]);
    } else if (unpacked.data.type == MSGPACK_OBJECT_STR)
        s_escape(out, unpacked.data.via.str.ptr, unpacked.data.via.str.size);
    else {
        //  msgpack-c stops printing when the buffer is full: a huge value is cut.
        size_t cap = size < 65536 ? 16 * size + 256 : 1024 * 1024;
        char *text = (char *)malloc(cap);
        if (text) {
            int len = msgpack_object_print_buffer(text, cap, unpacked.data);
            s_escape(out, text, len > 0 ? strnlen(text, (size_t)len) : 0);
            free(text);
        }
    }
    msgpack_unpacked_destroy(&unpacked);
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

//  Reads the options of load: slide=MS and wait=MS.
static int s_load_options(int argc, char **argv, zc_cache_load_opts_t *opts)
{
    memset(opts, 0, sizeof *opts);
    for (int i = 0; i < argc; i++) {
        int64_t *field = strncmp(argv[i], "slide=", 6) == 0  ? &opts->slide_ms
                         : strncmp(argv[i], "wait=", 5) == 0 ? &opts->wait_ms
                                                             : NULL;
        if (!field || s_parse_int(strchr(argv[i], '=') + 1, 0, field)) return -1;
    }
    return 0;
}

//  Runs one command (argv[0] is its name), writing any result to out; keys
//  are separated by sep. Returns 0, -1 if the cache call failed (the reason
//  is on the cache), or S_USAGE.
static int s_execute(zc_cache_t *cache, int argc, char **argv, FILE *out, char sep)
{
    const char *cmd = argv[0];
    int64_t n = 0;
    void *value = NULL;
    size_t size = 0;
    int rc = S_USAGE;
    if (strcmp(cmd, "save") == 0 && (argc == 3 || argc == 4)) {
        if (argc == 4 && s_parse_int(argv[3], 0, &n)) return S_USAGE;
        value = s_pack_text(argv[2], &size);
        rc = zc_cache_save(cache, argv[1], value, size, n);
    } else if (strcmp(cmd, "load") == 0 && argc >= 2 && argc <= 4) {
        zc_cache_load_opts_t opts;
        if (s_load_options(argc - 2, argv + 2, &opts)) return S_USAGE;
        rc = zc_cache_load(cache, argv[1], &opts, &value, &size);
        if (rc == 0) s_render(out, value, size);
    } else if (strcmp(cmd, "destroy") == 0 && argc == 2)
        rc = zc_cache_destroy_key(cache, argv[1]);
    else if (strcmp(cmd, "ttl") == 0 && argc == 2) {
        rc = zc_cache_ttl(cache, argv[1], &n);
        if (rc == 0) fprintf(out, "%" PRId64, n);
    } else if (strcmp(cmd, "push") == 0 && argc == 3) {
        value = s_pack_text(argv[2], &size);
        rc = zc_cache_push(cache, argv[1], value, size);
    } else if (strcmp(cmd, "pop") == 0 && (argc == 2 || argc == 3)) {
        if (argc == 3 && s_parse_int(argv[2], 0, &n)) return S_USAGE;
        rc = n > 0 ? zc_cache_pop_wait(cache, argv[1], n, &value, &size)
                   : zc_cache_pop(cache, argv[1], &value, &size);
        if (rc == 0) s_render(out, value, size);
    } else if (strcmp(cmd, "length") == 0 && argc == 2) {
        size_t length;
        rc = zc_cache_length(cache, argv[1], &length);
        if (rc == 0) fprintf(out, "%zu", length);
    } else if (strcmp(cmd, "lock") == 0 && argc == 3) {
        if (s_parse_int(argv[2], 1, &n)) return S_USAGE;
        rc = zc_cache_lock(cache, argv[1], n);
    } else if (strcmp(cmd, "unlock") == 0 && argc == 2)
        rc = zc_cache_unlock(cache, argv[1]);
    else if (strcmp(cmd, "locked") == 0 && argc == 2) {
        char *owner = NULL;
        rc = zc_cache_locked(cache, argv[1], &owner);
        if (rc == 0) fputs(owner ? owner : "-", out);
        free(owner);
    } else if (strcmp(cmd, "keys") == 0 && argc <= 2) {
        char **keys = NULL;
        rc = zc_cache_keys(cache, argc == 2 ? argv[1] : NULL, &keys, NULL);
        for (size_t i = 0; rc == 0 && keys[i]; i++) {
            if (i) fputc(sep, out);
            s_escape(out, keys[i], strlen(keys[i]));
        }
        zc_cache_keys_free(&keys);
    } else if (strcmp(cmd, "size") == 0 && argc == 1) {
        size_t count;
        rc = zc_cache_size(cache, &count);
        if (rc == 0) fprintf(out, "%zu", count);
    } else if (strcmp(cmd, "clear") == 0 && argc == 1) {
        size_t removed;
        rc = zc_cache_clear(cache, &removed);
        if (rc == 0) fprintf(out, "removed=%zu", removed);
    } else if ((strcmp(cmd, "dump") == 0 || strcmp(cmd, "restore") == 0) && argc == 2) {
        size_t count;
        rc = cmd[0] == 'd' ? zc_cache_dump(cache, argv[1], &count)
                           : zc_cache_restore(cache, argv[1], &count);
        if (rc == 0) fprintf(out, "count=%zu", count);
    } else if (strcmp(cmd, "id") == 0 && argc == 1) {
        fputs(zc_cache_owner(cache), out);
        rc = 0;
    }
    free(value);
    return rc;
}

//  Runs one command with its result captured in *result_p (malloc'd, the
//  caller frees), so an answer can be printed in one piece. Returns as
//  s_execute, or S_NOMEM.
static int s_execute_captured(zc_cache_t *cache, int argc, char **argv, char sep, char **result_p)
{
    size_t len = 0;
    FILE *out = open_memstream(result_p, &len);
    if (!out) {
        *result_p = NULL;
        return S_NOMEM;
    }
    int rc = s_execute(cache, argc, argv, out, sep);
    fclose(out);
    return rc;
}

//  Splits line into words at spaces; returns how many (at most max).
static int s_split(char *line, char **words, int max)
{
    int n = 0;
    for (char *word = strtok(line, " \t"); word; word = strtok(NULL, " \t")) {
        if (n == max) return max + 1;
        words[n++] = word;
    }
    return n;
}

//  Reads commands from stdin until end of input or quit.
static void s_console(zc_cache_t *cache)
{
    printf("ready %s %s\n", zc_cache_owner(cache), zc_cache_cluster(cache));
    fflush(stdout);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        char *words[S_MAXARGS];
        int argc = s_split(line, words, S_MAXARGS);
        if (argc == 0) continue;
        if (strcmp(words[0], "quit") == 0) {
            printf("ok quit\n");
            break;
        }
        char *result = NULL;
        int rc = argc > S_MAXARGS ? S_USAGE : s_execute_captured(cache, argc, words, ' ', &result);
        if (rc == 0)
            printf("ok %s%s%s\n", words[0], *result ? " " : "", result);
        else if (rc == S_USAGE)
            printf("error %s: usage: unknown command or wrong arguments\n", words[0]);
        else if (rc == S_NOMEM)
            printf("error %s: %s: out of memory\n", words[0], s_kind(ZC_ERR_IO));
        else
            printf("error %s: %s: %s\n", words[0], s_kind(zc_cache_error(cache)),
                   zc_cache_errstr(cache));
        fflush(stdout);
        free(result);
    }
    free(line);
    fflush(stdout);
}

int cli_cache(int argc, char **argv)
{
    static struct option options[] = {{"redis", required_argument, 0, 'r'},
                                      {"cluster", required_argument, 0, 'c'},
                                      {"id", required_argument, 0, 'i'},
                                      {"help", no_argument, 0, 'h'},
                                      {0, 0, 0, 0}};
    const char *url = NULL, *cluster = NULL, *id = NULL;
    int c;
    optind = 1;
    //  "+": options end at the first command word, so values may start with '-'.
    while ((c = getopt_long(argc, argv, "+r:c:i:h", options, NULL)) != -1) {
        switch (c) {
        case 'r':
            url = optarg;
            break;
        case 'c':
            cluster = optarg;
            break;
        case 'i':
            id = optarg;
            break;
        case 'h':
            s_usage(stdout);
            return 0;
        default:
            s_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (!url && !(getenv("ZC_REDIS_URL") && *getenv("ZC_REDIS_URL"))) {
        fprintf(stderr, "zcluster cache: no Redis: give --redis URL or set ZC_REDIS_URL\n");
        return CLI_USAGE;
    }
    zc_cache_t *cache = zc_cache_new(url, cluster, id);
    if (!cache) return 1; //  a bad URL or name: the reason is logged
    int status = 0;
    if (optind == argc)
        s_console(cache);
    else {
        char *result = NULL;
        int rc = s_execute_captured(cache, argc - optind, argv + optind, '\n', &result);
        if (rc == 0 && *result) printf("%s\n", result);
        free(result);
        if (rc == S_USAGE) {
            fprintf(stderr, "zcluster cache: %s: unknown command or wrong arguments\n\n",
                    argv[optind]);
            s_usage(stderr);
            status = CLI_USAGE;
        } else if (rc == S_NOMEM) {
            fprintf(stderr, "zcluster cache: %s: %s: out of memory\n", argv[optind],
                    s_kind(ZC_ERR_IO));
            status = 1;
        } else if (rc != 0) {
            fprintf(stderr, "zcluster cache: %s: %s: %s\n", argv[optind],
                    s_kind(zc_cache_error(cache)), zc_cache_errstr(cache));
            status = 1;
        }
    }
    zc_cache_destroy(&cache);
    return status;
}
