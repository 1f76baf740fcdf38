/*  zcluster workers | health | restart | shutdown | upgrade | events | admin
    — talk to a running master through its admin API.

    The master writes its URL to RUNTIME_DIR/admin.json and, unless given a
    key, a generated key to RUNTIME_DIR/admin.key (mode 0600); these commands
    find both from --name (or --runtime-dir), so on the master's host, as
    its user, `zcluster workers` just works. --admin and --key-file (or
    $ZC_ADMIN_KEY) point elsewhere; the key is never an argument, since
    `ps` shows arguments to every user.

    The HTTP client is libcurl (HTTPS with certificate checks, --cacert for
    a private CA): one request per connection, the key in a header.
    Commands that take time wait for the master's answer (a rolling reload
    answers once done or aborted) unless --no-wait.

    Exit codes: 0 done, 1 the master answered that it failed (an aborted
    reload, a degraded health), 2 no master to talk to or the key refused,
    64 bad usage.
*/
#include "cli.h"
#include "cli_args.h"
#include "zc_supervisor.h"

#include <curl/curl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_FAILED      1
#define EXIT_UNREACHABLE 2

//  Where the master is: the options that find it.
typedef struct {
    cli_cluster_t name; //  --name (or --cluster)
    const char *dir, *admin, *key_file, *cacert;
} s_where_t;

typedef struct {
    const char *command;
    s_where_t where;
    char base[400]; //  "http://127.0.0.1:PORT": the URL without its path
    char key[256];
    int json;        //  print the master's JSON as it is
    long timeout_ms; //  -1: wait as long as the master keeps the connection
    int no_wait;
    const char *group;
    long long since;
    int follow;
    int get;
} s_client_t;

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: zcluster workers  [OPTIONS]               the workers: id, pid, state...\n"
            "       zcluster health   [OPTIONS]               health; exit 1 unless ok\n"
            "       zcluster restart  [OPTIONS] all|ID        gated rolling reload\n"
            "       zcluster shutdown [OPTIONS] all|ID        stop everything, or one worker\n"
            "       zcluster upgrade  [OPTIONS] [--group G] -- PROGRAM [ARGS...]\n"
            "                                                 gated rolling upgrade\n"
            "       zcluster events   [OPTIONS] [--since SEQ] [--follow]\n"
            "       zcluster admin    [OPTIONS] [--get] COMMAND [ARGS...]\n"
            "                                                 any API command (help, exit,\n"
            "                                                 the application's own)\n\n"
            "Talks to a running master (`zcluster start`) through its admin API.\n"
            "  --name NAME          the master's cluster name (default: $ZC_CLUSTER or zcluster)\n"
            "  --runtime-dir DIR    the master's runtime dir (admin.json, admin.key)\n"
            "  --admin [http[s]://][HOST:]PORT\n"
            "                       the API's address instead (HOST default 127.0.0.1)\n"
            "  --key-file FILE      access key, the first line of FILE (mode 0600; default:\n"
            "                       $ZC_ADMIN_KEY, else DIR/admin.key)\n"
            "  --cacert FILE        HTTPS: trust the CA certificates (PEM) in FILE\n"
            "  --json               print the master's JSON answer\n"
            "  --timeout DUR        give up after DUR (default: 10s for reads, none otherwise)\n"
            "  --no-wait            restart/shutdown/upgrade: return once started\n"
            "Exit code: 0 done, 1 the master reports a failure, 2 no master or key refused.\n");
}

//  --------------------------------------------------------------------------
//  HTTP

static void s_encode(char *out, size_t cap, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && n + 4 < cap; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p))
            out[n++] = (char)*p;
        else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    out[n] = 0;
}

//  The answer's body as it arrives.
typedef struct {
    char *data;
    size_t used;
} s_body_t;

//  libcurl's write callback: appends what arrived. Returns its size.
static size_t s_collect(char *data, size_t size, size_t count, void *arg)
{
    s_body_t *body = (s_body_t *)arg;
    size_t n = size * count;
    body->data = (char *)realloc(body->data, body->used + n + 1);
    memcpy(body->data + body->used, data, n);
    body->used += n;
    body->data[body->used] = 0;
    return n;
}

//  Says why a request got no answer.
static void s_http_failed(s_client_t *c, CURLcode rc, const char *detail)
{
    if (rc == CURLE_OPERATION_TIMEDOUT)
        fprintf(stderr, "zcluster %s: no answer within %ld ms\n", c->command, c->timeout_ms);
    else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
             rc == CURLE_SSL_CONNECT_ERROR)
        fprintf(stderr,
                "zcluster %s: cannot trust the master at %s (%s): give its CA with --cacert "
                "FILE\n",
                c->command, c->base, *detail ? detail : curl_easy_strerror(rc));
    else
        fprintf(stderr, "zcluster %s: no master answers on %s (%s)\n", c->command, c->base,
                *detail ? detail : curl_easy_strerror(rc));
}

//  Sends one request; returns the HTTP status with the body in *body (the
//  caller frees it), or -1 with a message printed.
static int s_http(s_client_t *c, const char *method, const char *target, char **body)
{
    *body = NULL;
    CURL *curl = curl_easy_init();
    if (!curl) return -1;
    char url[16800], header[300], detail[CURL_ERROR_SIZE] = "";
    snprintf(url, sizeof url, "%s%s", c->base, target);
    snprintf(header, sizeof header, "X-Zcluster-Key: %s", c->key);
    struct curl_slist *headers = curl_slist_append(NULL, header);
    explicit_bzero(header, sizeof header);
    s_body_t answer = {NULL, 0};
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, detail);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    if (strcmp(method, "POST") == 0) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
    if (c->where.cacert) curl_easy_setopt(curl, CURLOPT_CAINFO, c->where.cacert);
    //  0 would mean no limit to libcurl
    if (c->timeout_ms >= 0) curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, c->timeout_ms + 1);
    CURLcode rc = curl_easy_perform(curl);
    long status = -1;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        *body = answer.data ? answer.data : strdup("");
    } else {
        s_http_failed(c, rc, detail);
        free(answer.data);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return (int)status;
}

//  Sends a request and parses the JSON answer. Returns the HTTP status and
//  *json (NULL if not JSON), or -1 with a message printed.
static int s_call(s_client_t *c, const char *method, const char *target, json_t **json)
{
    char *body = NULL;
    int status = s_http(c, method, target, &body);
    *json = NULL;
    if (status < 0) return -1;
    *json = json_loads(body, 0, NULL);
    if (status == 401)
        fprintf(stderr,
                "zcluster %s: the master refused the access key (give --key-file or "
                "$ZC_ADMIN_KEY)\n",
                c->command);
    else if (c->json)
        printf("%s\n", body);
    free(body);
    return status;
}

//  --------------------------------------------------------------------------
//  Finding the master

static int s_read_file(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(out, 1, cap - 1, f);
    fclose(f);
    out[n] = 0;
    return 0;
}

//  Takes --admin [http[s]://][HOST:]PORT into c->base. Returns 0, or -1
//  after saying what is wrong.
static int s_admin_url(s_client_t *c, const char *admin)
{
    const char *scheme = strncmp(admin, "https://", 8) == 0 ? "https" : "http";
    const char *p = strstr(admin, "://") ? strstr(admin, "://") + 3 : admin;
    const char *colon = strrchr(p, ':');
    char host[256] = "127.0.0.1";
    if (colon) snprintf(host, sizeof host, "%.*s", (int)(colon - p), p);
    int64_t port;
    int known = strstr(admin, "://") == NULL || strncmp(admin, "http", 4) == 0;
    if (!known || cli_args_number(colon ? colon + 1 : p, 1, 65535, &port) || !*host) {
        fprintf(stderr, "zcluster %s: --admin takes [http[s]://][HOST:]PORT\n", c->command);
        return -1;
    }
    snprintf(c->base, sizeof c->base, "%s://%s:%d", scheme, host, (int)port);
    return 0;
}

//  Finds the master's address and key from the options. Returns 0, or the
//  exit code after saying why not.
static int s_locate(s_client_t *c)
{
    const char *dir = c->where.dir, *admin = c->where.admin, *key = NULL;
    char dir_buf[512];
    if (!dir) {
        zc_supervisor_t *probe = zc_supervisor_new(c->where.name.cluster);
        if (!probe) return CLI_USAGE;
        snprintf(dir_buf, sizeof dir_buf, "%s", zc_supervisor_runtime_dir(probe));
        zc_supervisor_destroy(&probe);
        dir = dir_buf;
    }
    if (admin) {
        if (s_admin_url(c, admin)) return CLI_USAGE;
    } else {
        char path[600], text[4096];
        snprintf(path, sizeof path, "%s/admin.json", dir);
        json_t *info = s_read_file(path, text, sizeof text) ? NULL : json_loads(text, 0, NULL);
        const char *url = json_string_value(json_object_get(info, "url"));
        if (url) snprintf(c->base, sizeof c->base, "%s", url);
        json_decref(info);
        if (!url) {
            fprintf(stderr,
                    "zcluster %s: no master found (%s missing): is `zcluster start` running "
                    "with this --name / --runtime-dir?\n",
                    c->command, path);
            return EXIT_UNREACHABLE;
        }
    }
    if (c->where.key_file)
        return cli_args_secret_file(c->command, "--key-file", c->where.key_file, c->key,
                                    sizeof c->key);
    key = getenv("ZC_ADMIN_KEY");
    if (key && *key)
        snprintf(c->key, sizeof c->key, "%s", key);
    else {
        char path[600];
        snprintf(path, sizeof path, "%s/admin.key", dir);
        if (s_read_file(path, c->key, sizeof c->key) == 0) c->key[strcspn(c->key, "\r\n")] = 0;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Printing

static const char *s_str(json_t *object, const char *key)
{
    const char *value = json_string_value(json_object_get(object, key));
    return value ? value : "";
}

static long long s_int(json_t *object, const char *key)
{
    return (long long)json_integer_value(json_object_get(object, key));
}

static void s_duration(char *out, size_t cap, long long ms)
{
    if (ms < 60000)
        snprintf(out, cap, "%.1fs", (double)ms / 1000);
    else if (ms < 3600000)
        snprintf(out, cap, "%lldm%02llds", ms / 60000, ms / 1000 % 60);
    else if (ms < 86400000)
        snprintf(out, cap, "%lldh%02lldm", ms / 3600000, ms / 60000 % 60);
    else
        snprintf(out, cap, "%lldd%02lldh", ms / 86400000, ms / 3600000 % 24);
}

static void s_print_workers(json_t *reply)
{
    json_t *workers = json_object_get(reply, "workers");
    printf("%-24s %-10s %8s  %-9s %8s %8s  %s\n", "ID", "GROUP", "PID", "STATE", "RESTARTS",
           "UPTIME", "STATUS");
    size_t i;
    json_t *w;
    json_array_foreach(workers, i, w)
    {
        char uptime[32] = "-";
        if (s_int(w, "pid")) s_duration(uptime, sizeof uptime, s_int(w, "uptime_ms"));
        char state[32];
        const char *role = s_str(w, "role");
        snprintf(state, sizeof state, "%s%s", s_str(w, "state"),
                 strcmp(role, "replacement") == 0 ? "+new"
                 : strcmp(role, "retired") == 0   ? "+old"
                                                  : "");
        printf("%-24s %-10s %8lld  %-9s %8lld %8s  %s\n", s_str(w, "id"), s_str(w, "group"),
               s_int(w, "pid"), state, s_int(w, "restarts"), uptime, s_str(w, "status"));
    }
}

static void s_print_reload(json_t *r)
{
    printf("%s %s: %lld of %lld worker(s) replaced in %.1f s, never fewer than %lld of %lld "
           "ready\n",
           s_str(r, "kind"), s_str(r, "result"), s_int(r, "replaced"), s_int(r, "of"),
           (double)s_int(r, "ms") / 1000, s_int(r, "min_ready"), s_int(r, "expected"));
    if (*s_str(r, "error")) printf("  %s\n", s_str(r, "error"));
}

static void s_print_health(json_t *h)
{
    json_t *w = json_object_get(h, "workers");
    printf("cluster %s: %s, %lld of %lld worker(s) ready (%lld starting, %lld stopping, %lld in "
           "backoff); master pid %lld\n",
           s_str(h, "cluster"), s_str(h, "status"), s_int(w, "ready"), s_int(w, "expected"),
           s_int(w, "starting"), s_int(w, "stopping"), s_int(w, "backoff"), s_int(h, "master_pid"));
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(h, "groups"), i, g)
    {
        printf("  group %s: %s, %lld of %lld ready, %lld restart(s) in the last %.0f s (limit "
               "%lld): %s\n",
               s_str(g, "name"), s_str(g, "state"), s_int(g, "ready"), s_int(g, "workers"),
               s_int(g, "restarts_in_window"), (double)s_int(g, "window_ms") / 1000,
               s_int(g, "max_restarts"), s_str(g, "program"));
    }
    json_t *redis = json_object_get(h, "redis");
    printf("  redis %s%s\n", s_str(redis, "url"),
           json_is_true(json_object_get(redis, "embedded")) ? " (embedded)" : "");
    json_array_foreach(json_object_get(redis, "processes"), i, g) printf(
        "    %s: pid %lld, port %lld\n", s_str(g, "name"), s_int(g, "pid"), s_int(g, "port"));
    json_t *reload = json_object_get(h, "reload");
    if (json_is_object(reload))
        printf("  %s running: %lld of %lld replaced\n", s_str(reload, "kind"),
               s_int(reload, "replaced"), s_int(reload, "of"));
    json_t *last = json_object_get(h, "last_reload");
    if (json_is_object(last))
        printf("  last %s: %s, %lld of %lld replaced in %.1f s, never fewer than %lld of %lld "
               "ready%s%s\n",
               s_str(last, "kind"), s_str(last, "reason"), s_int(last, "replaced"),
               s_int(last, "of"), (double)s_int(last, "ms") / 1000, s_int(last, "min_ready"),
               s_int(last, "expected"), *s_str(last, "text") ? "; " : "", s_str(last, "text"));
}

static void s_print_event(json_t *e)
{
    time_t seconds = (time_t)(s_int(e, "time") / 1000);
    struct tm tm;
    localtime_r(&seconds, &tm);
    printf("%02d:%02d:%02d.%03lld #%-5lld %-7s", tm.tm_hour, tm.tm_min, tm.tm_sec,
           s_int(e, "time") % 1000, s_int(e, "seq"), s_str(e, "event"));
    if (*s_str(e, "worker")) printf(" %s", s_str(e, "worker"));
    if (*s_str(e, "reason")) printf(" %s", s_str(e, "reason"));
    if (s_int(e, "pid")) printf(" pid=%lld", s_int(e, "pid"));
    const char *type = s_str(e, "event");
    if (strcmp(type, "exit") == 0)
        printf(s_int(e, "signal") ? " signal=%lld" : " code=%lld",
               s_int(e, "signal") ? s_int(e, "signal") : s_int(e, "code"));
    if (strcmp(type, "ready") == 0) printf(" after=%lldms", s_int(e, "after_ms"));
    if (strcmp(type, "reload") == 0 && strcmp(s_str(e, "reason"), "started") != 0)
        printf(" %s %lld/%lld in %lldms min_ready=%lld/%lld", s_str(e, "kind"),
               s_int(e, "replaced"), s_int(e, "of"), s_int(e, "ms"), s_int(e, "min_ready"),
               s_int(e, "expected"));
    if (*s_str(e, "text")) printf(" \"%s\"", s_str(e, "text"));
    printf("\n");
}

//  --------------------------------------------------------------------------
//  Commands

//  Maps an answer to an exit code, printing the master's error if any.
static int s_outcome(s_client_t *c, int status, json_t *reply)
{
    if (status < 0) return EXIT_UNREACHABLE;
    if (status == 401) return EXIT_UNREACHABLE;
    if (!reply) {
        fprintf(stderr, "zcluster %s: the master's answer is not JSON (HTTP %d)\n", c->command,
                status);
        return EXIT_FAILED;
    }
    int ok = json_is_true(json_object_get(reply, "ok"));
    if (!ok && *s_str(reply, "error") && !json_object_get(reply, "kind"))
        fprintf(stderr, "zcluster %s: %s\n", c->command, s_str(reply, "error"));
    return ok ? 0 : EXIT_FAILED;
}

static int s_events(s_client_t *c)
{
    long long since = c->since;
    int rc = 0;
    while (1) {
        char target[64];
        snprintf(target, sizeof target, "/events?since=%lld", since);
        json_t *reply;
        int saved_json = c->json;
        c->json = 0;
        int status = s_call(c, "GET", target, &reply);
        c->json = saved_json;
        if (status < 0 || status == 401) {
            rc = c->follow && since > c->since && status < 0 ? 0 : EXIT_UNREACHABLE;
            json_decref(reply);
            break; //  with --follow, the master exiting ends the stream
        }
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(reply, "events"), i, e)
        {
            if (c->json) {
                char *text = json_dumps(e, JSON_COMPACT);
                printf("%s\n", text);
                free(text);
            } else
                s_print_event(e);
            if (s_int(e, "seq") > since) since = s_int(e, "seq");
        }
        fflush(stdout);
        json_decref(reply);
        if (!c->follow) break;
        struct timespec ts = {0, 300 * 1000000};
        nanosleep(&ts, NULL);
    }
    return rc;
}

//  Appends "PREFIX" + each argument URL-encoded to target at *used.
//  Returns 0, or -1 if target is too small.
static int s_append_args(char *target, size_t cap, size_t *used, const char *prefix, int argc,
                         char **argv)
{
    for (int i = 0; i < argc && *used < cap; i++) {
        char arg[4096];
        s_encode(arg, sizeof arg, argv[i]);
        *used += (size_t)snprintf(target + *used, cap - *used, "%s%s", prefix, arg);
    }
    return *used < cap ? 0 : -1;
}

//  zcluster workers | health
static int s_read(s_client_t *c, int argc)
{
    if (argc) {
        fprintf(stderr, "zcluster %s: takes no arguments\n", c->command);
        return CLI_USAGE;
    }
    char target[64];
    json_t *reply = NULL;
    snprintf(target, sizeof target, "/%s", c->command);
    int status = s_call(c, "GET", target, &reply);
    int rc = s_outcome(c, status, reply);
    if (status == 200 && reply && !c->json) {
        if (!strcmp(c->command, "workers"))
            s_print_workers(reply);
        else
            s_print_health(reply);
    }
    json_decref(reply);
    return rc;
}

//  Prints what a restart or shutdown came to.
static void s_print_stop(const char *cmd, const char *target, int status, int rc, json_t *reply)
{
    if (json_object_get(reply, "kind"))
        s_print_reload(reply);
    else if (status == 202)
        printf("%s %s: started\n", cmd, target);
    else if (!strcmp(cmd, "shutdown") && rc == 0 && !strcmp(target, "all"))
        printf("shutdown: the master stopped every worker and exited with code %lld\n",
               s_int(reply, "code"));
    else if (!strcmp(cmd, "shutdown") && rc == 0)
        printf("shutdown %s: stopped (exit code %lld%s)\n", target, s_int(reply, "code"),
               json_is_true(json_object_get(reply, "killed")) ? ", after SIGKILL" : "");
    else if (!strcmp(cmd, "shutdown") && json_object_get(reply, "code"))
        printf("shutdown: the master exited with code %lld\n", s_int(reply, "code"));
}

//  zcluster restart | shutdown all|ID
static int s_restart_or_shutdown(s_client_t *c, int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "zcluster %s: give `all` or a worker id\n", c->command);
        return CLI_USAGE;
    }
    char id[1024], target[1200];
    json_t *reply = NULL;
    s_encode(id, sizeof id, argv[0]);
    snprintf(target, sizeof target, "/%s/%s%s", c->command, id, c->no_wait ? "?wait=0" : "");
    int status = s_call(c, "POST", target, &reply);
    int rc = s_outcome(c, status, reply);
    if (reply && !c->json && (status == 200 || status == 409 || status == 202))
        s_print_stop(c->command, argv[0], status, rc, reply);
    json_decref(reply);
    return rc;
}

//  zcluster upgrade [--group G] -- PROGRAM [ARGS...]
static int s_upgrade(s_client_t *c, int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "zcluster upgrade: give the new program: upgrade -- PROGRAM [ARGS]\n");
        return CLI_USAGE;
    }
    char target[16384];
    size_t n = (size_t)snprintf(target, sizeof target, "/upgrade?wait=%d", !c->no_wait);
    if (c->group) {
        char g[512];
        s_encode(g, sizeof g, c->group);
        n += (size_t)snprintf(target + n, sizeof target - n, "&group=%s", g);
    }
    if (s_append_args(target, sizeof target, &n, "&arg=", argc, argv)) {
        fprintf(stderr, "zcluster upgrade: command line too long\n");
        return CLI_USAGE;
    }
    json_t *reply = NULL;
    int status = s_call(c, "POST", target, &reply);
    int rc = s_outcome(c, status, reply);
    if (reply && !c->json && json_object_get(reply, "kind"))
        s_print_reload(reply);
    else if (reply && !c->json && status == 202)
        printf("upgrade: started\n");
    json_decref(reply);
    return rc;
}

//  zcluster admin [--get] COMMAND [ARGS...]
static int s_command(s_client_t *c, int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "zcluster admin: give a command (`zcluster admin help` lists them)\n");
        return CLI_USAGE;
    }
    char target[16384];
    size_t n = 0;
    if (s_append_args(target, sizeof target, &n, "/", argc, argv)) {
        fprintf(stderr, "zcluster admin: command line too long\n");
        return CLI_USAGE;
    }
    json_t *reply = NULL;
    int saved = c->json;
    c->json = 0;
    int status = s_call(c, c->get ? "GET" : "POST", target, &reply);
    c->json = saved;
    int rc = s_outcome(c, status, reply);
    if (reply) {
        char *text = json_dumps(reply, c->json ? JSON_COMPACT : JSON_INDENT(2));
        printf("%s\n", text);
        free(text);
    }
    json_decref(reply);
    return rc;
}

static int s_run(s_client_t *c, int argc, char **argv)
{
    const char *cmd = c->command;
    int reads = !strcmp(cmd, "workers") || !strcmp(cmd, "health") || !strcmp(cmd, "events");
    if (c->timeout_ms == -2) c->timeout_ms = reads ? 10000 : -1;
    if (!strcmp(cmd, "workers") || !strcmp(cmd, "health")) return s_read(c, argc);
    if (!strcmp(cmd, "events")) {
        if (argc) {
            fprintf(stderr, "zcluster events: takes no arguments\n");
            return CLI_USAGE;
        }
        return s_events(c);
    }
    if (!strcmp(cmd, "restart") || !strcmp(cmd, "shutdown"))
        return s_restart_or_shutdown(c, argc, argv);
    if (!strcmp(cmd, "upgrade")) return s_upgrade(c, argc, argv);
    return s_command(c, argc, argv);
}

enum {
    O_DIR = 1000,
    O_ADMIN,
    O_KEY_FILE,
    O_KEY_GONE,
    O_CACERT,
    O_JSON,
    O_TIMEOUT,
    O_NO_WAIT,
    O_GROUP,
    O_SINCE,
    O_FOLLOW,
    O_GET
};

//  Takes an option with a value to check (--timeout, --since). Returns -1
//  to go on, or CLI_USAGE after saying what is wrong.
static int s_checked_option(s_client_t *c, int option, const char *value)
{
    int64_t number;
    if (option == O_TIMEOUT && cli_args_duration(value, INT_MAX, &number) == 0)
        c->timeout_ms = (long)number;
    else if (option == O_SINCE && cli_args_number(value, 0, INT64_MAX, &number) == 0)
        c->since = (long long)number;
    else {
        fprintf(stderr, "zcluster %s: bad --%s '%s'\n", c->command,
                option == O_TIMEOUT ? "timeout" : "since", value);
        return CLI_USAGE;
    }
    return -1;
}

//  Takes one option into c or where. Returns -1 to go on, or the exit code.
static int s_option(void *self, int option, const char *value)
{
    s_client_t *c = (s_client_t *)self;
    s_where_t *where = &c->where;
    if (option == O_TIMEOUT || option == O_SINCE) return s_checked_option(c, option, value);
    if (option == O_KEY_GONE) return cli_args_key_gone(c->command);
    const char **text = option == O_DIR        ? &where->dir
                        : option == O_ADMIN    ? &where->admin
                        : option == O_KEY_FILE ? &where->key_file
                        : option == O_CACERT   ? &where->cacert
                        : option == O_GROUP    ? &c->group
                                               : NULL;
    int *flag = option == O_JSON      ? &c->json
                : option == O_NO_WAIT ? &c->no_wait
                : option == O_FOLLOW  ? &c->follow
                : option == O_GET     ? &c->get
                                      : NULL;
    if (text)
        *text = value;
    else if (flag)
        *flag = 1;
    else
        return cli_args_usage(option, s_usage);
    return -1;
}

//  Parses the options into c. Returns -1 to go on, or the exit code.
static int s_options(s_client_t *c, int argc, char **argv)
{
    static struct option options[] = {{"name", required_argument, 0, CLI_OPT_CLUSTER},
                                      CLI_OPTION_CLUSTER,
                                      {"runtime-dir", required_argument, 0, O_DIR},
                                      {"admin", required_argument, 0, O_ADMIN},
                                      {"key-file", required_argument, 0, O_KEY_FILE},
                                      {"key", required_argument, 0, O_KEY_GONE},
                                      {"cacert", required_argument, 0, O_CACERT},
                                      {"json", no_argument, 0, O_JSON},
                                      {"timeout", required_argument, 0, O_TIMEOUT},
                                      {"no-wait", no_argument, 0, O_NO_WAIT},
                                      {"group", required_argument, 0, O_GROUP},
                                      {"since", required_argument, 0, O_SINCE},
                                      {"follow", no_argument, 0, O_FOLLOW},
                                      {"get", no_argument, 0, O_GET},
                                      {"help", no_argument, 0, 'h'},
                                      {0, 0, 0, 0}};
    cli_args_t args = {"h", options, s_usage, &c->where.name, NULL, s_option, c};
    return cli_args_parse(&args, argc, argv);
}

int cli_admin(int argc, char **argv)
{
    s_client_t client;
    memset(&client, 0, sizeof client);
    client.command = argv[0];
    client.timeout_ms = -2; //  per command, in s_run
    int rc = s_options(&client, argc, argv);
    if (rc >= 0) return rc;
    rc = s_locate(&client);
    if (rc == 0) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        rc = s_run(&client, argc - optind, argv + optind);
        curl_global_cleanup();
    }
    explicit_bzero(client.key, sizeof client.key);
    return rc;
}
