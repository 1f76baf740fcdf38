/*  Supervisor: the admin API (keys, methods, commands, JSON) and every CLI
    command that talks to it; application commands and the event callback
    of a supervisor embedded in a program. */
#include "supkit.h"

#include <sys/stat.h>

static char s_out[65536];

static void s_keys(zs_master_t *sup)
{
    zt_section("admin API: access key");
    json_t *body = NULL;
    char header[256];
    ZT_EQ(zs_http(sup->port, "GET", "/workers", NULL, &body), 401);
    ZT_CHECK(body && json_is_false(json_object_get(body, "ok")));
    json_decref(body);
    ZT_EQ(zs_http(sup->port, "GET", "/workers", "X-Zcluster-Key: wrong\r\n", &body), 401);
    json_decref(body);
    //  Same length, last byte differs; a prefix; the key plus one byte.
    char key[64];
    snprintf(key, sizeof key, "%s", sup->key);
    key[strlen(key) - 1] ^= 1;
    snprintf(header, sizeof header, "X-Zcluster-Key: %s\r\n", key);
    ZT_EQ(zs_http(sup->port, "GET", "/workers", header, &body), 401);
    json_decref(body);
    snprintf(header, sizeof header, "X-Zcluster-Key: %.*s\r\n", (int)strlen(sup->key) - 1,
             sup->key);
    ZT_EQ(zs_http(sup->port, "GET", "/workers", header, &body), 401);
    json_decref(body);
    snprintf(header, sizeof header, "X-Zcluster-Key: %sx\r\n", sup->key);
    ZT_EQ(zs_http(sup->port, "GET", "/workers", header, &body), 401);
    json_decref(body);
    //  The three accepted ways.
    snprintf(header, sizeof header, "X-Zcluster-Key: %s\r\n", sup->key);
    ZT_EQ(zs_http(sup->port, "GET", "/workers", header, &body), 200);
    json_decref(body);
    snprintf(header, sizeof header, "Authorization: Bearer %s\r\n", sup->key);
    ZT_EQ(zs_http(sup->port, "GET", "/health", header, &body), 200);
    json_decref(body);
    char target[128];
    snprintf(target, sizeof target, "/health?key=%s", sup->key);
    ZT_EQ(zs_http(sup->port, "GET", target, NULL, &body), 200);
    json_decref(body);
    //  A refused key changes nothing.
    ZT_EQ(zs_http(sup->port, "POST", "/shutdown/all", "X-Zcluster-Key: wrong\r\n", &body), 401);
    json_decref(body);
    ZT_CHECK(zs_wait_ready(sup, 2, 1000));
}

static void s_commands(zs_master_t *sup)
{
    zt_section("admin API: methods, unknown commands, JSON");
    json_t *body = NULL;
    ZT_EQ(zs_call(sup, "GET", "/restart/all", &body), 405);
    json_decref(body);
    ZT_EQ(zs_call(sup, "GET", "/exit", &body), 405);
    json_decref(body);
    ZT_EQ(zs_call(sup, "PUT", "/workers", &body), 405);
    json_decref(body);
    ZT_EQ(zs_call(sup, "GET", "/nosuch", &body), 404);
    ZT_CHECK(body && strstr(zs_str(body, "error"), "unknown command"));
    json_decref(body);
    ZT_EQ(zs_call(sup, "POST", "/restart", &body), 400);
    json_decref(body);
    ZT_EQ(zs_call(sup, "POST", "/shutdown/nobody", &body), 404);
    json_decref(body);
    ZT_EQ(zs_call(sup, "POST", "/upgrade?group=nosuch&arg=x", &body), 404);
    json_decref(body);

    ZT_EQ(zs_call(sup, "GET", "/", &body), 200);                   //  help
    ZT_EQ(json_array_size(json_object_get(body, "commands")), 11); //  built-ins
    json_decref(body);

    ZT_EQ(zs_call(sup, "GET", "/workers", &body), 200);
    json_t *w = json_array_get(json_object_get(body, "workers"), 0);
    ZT_CHECK(w && !strcmp(zs_str(w, "id"), "admin-worker-1"));
    ZT_CHECK(w && zs_int(w, "pid") > 0 && !strcmp(zs_str(w, "state"), "ready"));
    ZT_CHECK(w && json_is_integer(json_object_get(w, "restarts")));
    ZT_CHECK(w && json_is_integer(json_object_get(w, "uptime_ms")));
    ZT_CHECK(w && json_is_integer(json_object_get(w, "ready_ms")));
    ZT_CHECK(w && !strcmp(zs_str(w, "group"), "worker"));
    json_decref(body);

    ZT_EQ(zs_call(sup, "GET", "/health", &body), 200);
    ZT_CHECK(body && json_is_true(json_object_get(body, "ok")));
    ZT_CHECK(body && !strcmp(zs_str(body, "status"), "ok"));
    ZT_EQ(zs_int(json_object_get(body, "workers"), "ready"), 2);
    ZT_EQ(zs_int(body, "master_pid"), sup->pid);
    json_decref(body);

    ZT_EQ(zs_call(sup, "GET", "/events?since=0", &body), 200);
    ZT_CHECK(json_array_size(json_object_get(body, "events")) >= 5);
    long long last = zs_int(body, "last");
    json_decref(body);
    char target[64];
    snprintf(target, sizeof target, "/events?since=%lld", last);
    ZT_EQ(zs_call(sup, "GET", target, &body), 200);
    ZT_EQ(json_array_size(json_object_get(body, "events")), 0);
    json_decref(body);
}

static int s_contains(const char *text, const char *part)
{
    int found = strstr(text, part) != NULL;
    if (!found) fprintf(stderr, "  expected '%s' in:\n%s\n", part, text);
    return found;
}

//  zcluster workers, health, events, and how they fail.
static void s_cli_reads(zs_master_t *sup)
{
    const char *dir = sup->dir, *key = sup->key_file;
    ZT_EQ(zs_cli(s_out, sizeof s_out, "workers", "--runtime-dir", dir, "--key-file", key, NULL), 0);
    ZT_CHECK(s_contains(s_out, "admin-worker-1"));
    ZT_CHECK(s_contains(s_out, "ready"));
    printf("$ zcluster workers\n%s", s_out);
    ZT_EQ(zs_cli(s_out, sizeof s_out, "workers", "--json", "--runtime-dir", dir, "--key-file", key,
                 NULL),
          0);
    json_t *parsed = json_loads(s_out, 0, NULL);
    ZT_CHECK(parsed && json_is_true(json_object_get(parsed, "ok")));
    json_decref(parsed);
    //  The key from the environment, the address given by hand.
    char admin[32];
    snprintf(admin, sizeof admin, "127.0.0.1:%d", sup->port);
    setenv("ZC_ADMIN_KEY", sup->key, 1);
    ZT_EQ(zs_cli(s_out, sizeof s_out, "health", "--admin", admin, NULL), 0);
    unsetenv("ZC_ADMIN_KEY");
    ZT_CHECK(s_contains(s_out, "cluster admin: ok, 2 of 2 worker(s) ready"));
    printf("$ zcluster health\n%s", s_out);
    ZT_EQ(zs_cli(s_out, sizeof s_out, "events", "--runtime-dir", dir, "--key-file", key, NULL), 0);
    ZT_CHECK(s_contains(s_out, "ready   admin-worker-2"));
    setenv("ZC_ADMIN_KEY", "wrong", 1);
    ZT_EQ(zs_cli(s_out, sizeof s_out, "workers", "--runtime-dir", dir, NULL), 2);
    unsetenv("ZC_ADMIN_KEY");
    ZT_EQ(zs_cli(s_out, sizeof s_out, "workers", "--runtime-dir", "/nonexistent", "--key-file", key,
                 NULL),
          2);
    ZT_EQ(zs_cli(s_out, sizeof s_out, "restart", "--runtime-dir", dir, "--key-file", key, NULL),
          64);
}

//  zcluster restart, upgrade, admin, and one master per runtime directory.
static void s_cli_changes(zs_master_t *sup)
{
    const char *dir = sup->dir, *key = sup->key_file;
    ZT_EQ(zs_cli(s_out, sizeof s_out, "restart", "admin-worker-1", "--runtime-dir", dir,
                 "--key-file", key, NULL),
          0);
    ZT_CHECK(s_contains(s_out, "restart done: 1 of 1 worker(s) replaced"));
    printf("$ zcluster restart admin-worker-1\n%s", s_out);
    ZT_EQ(zs_cli(s_out, sizeof s_out, "restart", "all", "--runtime-dir", dir, "--key-file", key,
                 NULL),
          0);
    ZT_CHECK(s_contains(s_out, "reload done: 2 of 2 worker(s) replaced"));
    ZT_CHECK(s_contains(s_out, "never fewer than 2 of 2 ready"));
    printf("$ zcluster restart all\n%s", s_out);
    ZT_EQ(zs_cli(s_out, sizeof s_out, "restart", "nobody", "--runtime-dir", dir, "--key-file", key,
                 NULL),
          1);
    ZT_EQ(zs_cli(s_out, sizeof s_out, "upgrade", "--runtime-dir", dir, "--key-file", key, "--",
                 zs_self, "worker", "--tag", "v9", NULL),
          0);
    ZT_CHECK(s_contains(s_out, "upgrade done: 2 of 2 worker(s) replaced"));
    printf("$ zcluster upgrade -- TEST worker --tag v9\n%s", s_out);
    ZT_EQ(zs_cli(s_out, sizeof s_out, "workers", "--runtime-dir", dir, "--key-file", key, NULL), 0);
    ZT_CHECK(s_contains(s_out, "tag=v9"));
    ZT_EQ(zs_cli(s_out, sizeof s_out, "upgrade", "--runtime-dir", dir, "--key-file", key, "--",
                 "/nonexistent/program", NULL),
          1);
    ZT_CHECK(s_contains(s_out, "upgrade aborted: 0 of 2"));
    ZT_CHECK(s_contains(s_out, "cannot execute /nonexistent/program"));
    printf("$ zcluster upgrade -- /nonexistent/program\n%s", s_out);

    ZT_EQ(
        zs_cli(s_out, sizeof s_out, "admin", "help", "--runtime-dir", dir, "--key-file", key, NULL),
        0);
    ZT_CHECK(s_contains(s_out, "\"commands\""));
    ZT_EQ(zs_cli(s_out, sizeof s_out, "admin", "--get", "workers", "--runtime-dir", dir,
                 "--key-file", key, NULL),
          0);
    ZT_CHECK(s_contains(s_out, "\"workers\""));
    ZT_EQ(zs_cli(s_out, sizeof s_out, "admin", "nosuch", "--runtime-dir", dir, "--key-file", key,
                 NULL),
          1);

    //  One master per runtime directory.
    ZT_EQ(zs_cli(s_out, sizeof s_out, "start", "--runtime-dir", dir, "--", "true", NULL), 1);
    ZT_EQ(zs_cli(s_out, sizeof s_out, "health", "--runtime-dir", dir, "--key-file", key, NULL), 0);
    ZT_EQ(zs_cli(s_out, sizeof s_out, "start", "--runtime-dir", dir, NULL), 64);
    ZT_EQ(zs_cli(s_out, sizeof s_out, "start", "--runtime-dir", dir, "--stop-timeout", "soon", "--",
                 "true", NULL),
          64);
}

//  zcluster shutdown: one worker for good, then everything.
static void s_cli_shutdown(zs_master_t *sup)
{
    const char *dir = sup->dir, *key = sup->key_file;
    char id[64];
    zs_worker_id(sup, 1, id, sizeof id);
    ZT_EQ(
        zs_cli(s_out, sizeof s_out, "shutdown", id, "--runtime-dir", dir, "--key-file", key, NULL),
        0);
    ZT_CHECK(s_contains(s_out, "stopped (exit code 0"));
    printf("$ zcluster shutdown %s\n%s", id, s_out);
    ZT_CHECK(zs_wait_ready(sup, 1, 5000));
    ZT_EQ(zs_cli(s_out, sizeof s_out, "shutdown", "all", "--runtime-dir", dir, "--key-file", key,
                 NULL),
          0);
    ZT_CHECK(s_contains(s_out, "exited with code 0"));
    printf("$ zcluster shutdown all\n%s", s_out);
    ZT_EQ(zs_stop(sup, 0, 10000), 0);
    ZT_EQ(zs_cli(s_out, sizeof s_out, "workers", "--runtime-dir", dir, "--key-file", key, NULL), 2);
}

static void s_cli(zs_master_t *sup)
{
    zt_section("CLI: workers, health, events, restart, upgrade, admin, shutdown");
    s_cli_reads(sup);
    s_cli_changes(sup);
    s_cli_shutdown(sup);
}

static void s_exit_command(zt_redis_t *redis)
{
    zt_section("CLI: admin exit kills every worker at once");
    const char *opts[] = {"-n", "2", "--redis", zt_redis_url(redis), "--stop-timeout", "60s", NULL};
    const char *worker[] = {"--ignore-term", NULL};
    zs_master_t *sup = zs_start("exit", opts, worker);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_CHECK(zs_wait_ready(sup, 2, 20000));
    int64_t start = zt_now_ms();
    ZT_EQ(zs_cli(s_out, sizeof s_out, "admin", "exit", "--runtime-dir", sup->dir, "--key-file",
                 sup->key_file, NULL),
          0);
    ZT_EQ(zs_stop(sup, 0, 10000), 2);
    ZT_CHECK(zt_now_ms() - start < 10000);
    zs_destroy(&sup);
}

//  --------------------------------------------------------------------------
//  A supervisor embedded in a program, with its own commands

static int s_ready_events;
static char s_all_ready[64] = "none"; //  the all-ready callbacks: "REASON:WORKERS..."

static void s_on_all_ready(zc_supervisor_t *sup, const char *reason, int workers, void *arg)
{
    size_t used = strcmp(s_all_ready, "none") == 0 ? 0 : strlen(s_all_ready);
    snprintf(s_all_ready + used, sizeof s_all_ready - used, "%s%s:%d", used ? "," : "", reason,
             workers);
}

static void s_on_event(zc_supervisor_t *sup, const zc_supervisor_event_t *event, void *arg)
{
    if (!strcmp(event->event, "ready")) s_ready_events++;
}

static char *s_echo(zc_supervisor_t *sup, int argc, const char **argv, char *err, size_t errlen,
                    void *arg)
{
    json_t *array = json_array();
    for (int i = 0; i < argc; i++)
        json_array_append_new(array, json_string(argv[i]));
    char *text = json_dumps(array, JSON_COMPACT);
    json_decref(array);
    return text;
}

static char *s_fail(zc_supervisor_t *sup, int argc, const char **argv, char *err, size_t errlen,
                    void *arg)
{
    snprintf(err, errlen, "boom");
    return NULL;
}

static char *s_bad_json(zc_supervisor_t *sup, int argc, const char **argv, char *err, size_t errlen,
                        void *arg)
{
    return strdup("not json");
}

static char *s_seen(zc_supervisor_t *sup, int argc, const char **argv, char *err, size_t errlen,
                    void *arg)
{
    char *workers = zc_supervisor_workers(sup);
    char *text = (char *)malloc(strlen(workers) + 64);
    sprintf(text, "{\"ready_events\":%d,\"all_ready\":\"%s\",\"workers\":%s}", s_ready_events,
            s_all_ready, workers);
    free(workers);
    return text;
}

static int s_embedded_master(const char *dir, const char *redis_url)
{
    zc_supervisor_t *sup = zc_supervisor_new("custom");
    char *const argv[] = {zs_self, "worker", NULL};
    zc_supervisor_add_group(sup, "app", 2, argv);
    zc_supervisor_set_redis(sup, redis_url);
    zc_supervisor_set_runtime_dir(sup, dir);
    zc_supervisor_on_event(sup, s_on_event, NULL);
    zc_supervisor_on_all_ready(sup, s_on_all_ready, NULL);
    zc_supervisor_command(sup, "echo", "returns its arguments", s_echo, NULL);
    zc_supervisor_command(sup, "fail", "always fails", s_fail, NULL);
    zc_supervisor_command(sup, "badjson", "returns something that is not JSON", s_bad_json, NULL);
    zc_supervisor_command(sup, "seen", "ready events seen by the callback", s_seen, NULL);
    int code = zc_supervisor_run(sup);
    zc_supervisor_destroy(&sup);
    return code;
}

//  The library's checks of its arguments, and the error each one leaves.
static void s_library_checks(void)
{
    zt_section("library: names, groups, CPU lists, commands, and their errors");
    zc_supervisor_t *probe = zc_supervisor_new("custom");
    ZT_EQ(zc_supervisor_command(probe, "workers", "", s_echo, NULL), -1); //  a built-in
    ZT_EQ(zc_supervisor_error(probe), ZC_ERR_DUPLICATE);
    ZT_EQ(zc_supervisor_command(probe, "bad name", "", s_echo, NULL), -1);
    ZT_EQ(zc_supervisor_error(probe), ZC_ERR_INVALID);
    ZT_EQ(zc_supervisor_command(probe, "echo", "", s_echo, NULL), 0);
    ZT_EQ(zc_supervisor_error(probe), ZC_OK);
    ZT_EQ(zc_supervisor_command(probe, "echo", "", s_echo, NULL), -1);
    char *const none[] = {NULL};
    ZT_EQ(zc_supervisor_add_group(probe, "g", 1, none), -1);
    ZT_EQ(zc_supervisor_error(probe), ZC_ERR_INVALID);
    char *const argv[] = {"true", NULL};
    ZT_EQ(zc_supervisor_add_group(probe, "bad/name", 1, argv), -1);
    ZT_EQ(zc_supervisor_add_group(probe, "g", 1, argv), 0);
    ZT_EQ(zc_supervisor_add_group(probe, "g", 1, argv), -1);
    ZT_EQ(zc_supervisor_error(probe), ZC_ERR_DUPLICATE);
    ZT_CHECK(strstr(zc_supervisor_errstr(probe), "repeated group name 'g'") != NULL);
    ZT_EQ(zc_supervisor_set_cpus(probe, "0-1,3"), 0);
    ZT_EQ(zc_supervisor_set_cpus(probe, "1-0"), -1);
    ZT_EQ(zc_supervisor_set_cpus(probe, "x"), -1);
    ZT_EQ(zc_supervisor_error(probe), ZC_ERR_INVALID);
    ZT_EQ(zc_supervisor_signal(probe, "custom-worker-1", SIGTERM), -1);
    ZT_EQ(zc_supervisor_error(probe), ZC_ERR_MISSING);
    ZT_EQ(zc_supervisor_reload(probe), -1); //  not running: no worker to reload
    ZT_EQ(zc_supervisor_error(probe), ZC_ERR_STATE);
    ZT_EQ(zc_supervisor_upgrade(probe, "nosuch", argv), -1);
    ZT_EQ(zc_supervisor_error(probe), ZC_ERR_MISSING);
    zc_supervisor_destroy(&probe);
    zc_supervisor_destroy(&probe);
    ZT_CHECK(zc_supervisor_new("bad name") == NULL);
    ZT_CHECK(zc_supervisor_new("bad{tag}") == NULL);
    probe = zc_supervisor_new("a/b"); //  a cluster name, but no default runtime dir
    ZT_CHECK(probe && !strcmp(zc_supervisor_runtime_dir(probe), ""));
    zc_supervisor_destroy(&probe);
    char id[64];
    ZT_CHECK(!strcmp(zc_supervisor_worker_id(id, sizeof id, "shop", 3), "shop-worker-3"));
}

//  Waits for the master's admin.json and its generated key; fills sup.
static void s_read_admin_files(const char *dir, zs_master_t *sup)
{
    char path[128], text[4096] = "";
    snprintf(path, sizeof path, "%s/admin.json", dir);
    json_t *info = NULL;
    for (int i = 0; i < 1000 && !info; i++) {
        FILE *f = fopen(path, "r");
        if (f) {
            size_t n = fread(text, 1, sizeof text - 1, f);
            text[n] = 0;
            fclose(f);
            info = json_loads(text, 0, NULL);
        }
        if (!info) zs_sleep_ms(10);
    }
    ZT_CHECK(info != NULL);
    sup->port = info ? (int)zs_int(info, "port") : 0;
    json_decref(info);
    snprintf(path, sizeof path, "%s/admin.key", dir);
    struct stat st;
    ZT_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(sup->key, sizeof sup->key, f)) sup->key[0] = 0;
        sup->key[strcspn(sup->key, "\n")] = 0;
        fclose(f);
    }
    ZT_EQ(strlen(sup->key), 48);
}

static void s_custom_commands(zs_master_t *sup)
{
    json_t *body = NULL;
    ZT_EQ(zs_call(sup, "POST", "/echo/a/b%20c", &body), 200);
    json_t *result = json_object_get(body, "result");
    ZT_EQ(json_array_size(result), 3);
    ZT_CHECK(!strcmp(json_string_value(json_array_get(result, 2)), "b c"));
    json_decref(body);
    ZT_EQ(zs_call(sup, "GET", "/echo", &body), 405);
    json_decref(body);
    ZT_EQ(zs_call(sup, "POST", "/fail", &body), 500);
    ZT_CHECK(body && !strcmp(zs_str(body, "error"), "boom"));
    json_decref(body);
    ZT_EQ(zs_call(sup, "POST", "/badjson", &body), 500);
    json_decref(body);
    ZT_EQ(zs_call(sup, "POST", "/seen", &body), 200);
    result = json_object_get(body, "result");
    ZT_EQ(zs_int(result, "ready_events"), 2);
    ZT_CHECK(strcmp(zs_str(result, "all_ready"), "start:2") == 0); //  once, with both
    ZT_EQ(json_array_size(json_object_get(result, "workers")), 2);
    json_decref(body);
    ZT_EQ(zs_call(sup, "GET", "/help", &body), 200);
    ZT_EQ(json_array_size(json_object_get(body, "commands")), 15);
    json_decref(body);
}

static void s_embedded(zt_redis_t *redis)
{
    zt_section("library: custom commands, event callback, generated key");
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/zc-test-sup-XXXXXX");
    ZT_CHECK(mkdtemp(dir) != NULL);
    unsetenv("ZC_ADMIN_KEY");
    fflush(stdout);
    pid_t pid = zt_fork();
    if (pid == 0) _exit(s_embedded_master(dir, zt_redis_url(redis)));
    zs_master_t sup = {.pid = pid};
    s_read_admin_files(dir, &sup);
    ZT_CHECK(zs_wait_ready(&sup, 2, 20000));
    s_custom_commands(&sup);

    //  The CLI finds the port and the generated key in the runtime dir.
    ZT_EQ(zs_cli(s_out, sizeof s_out, "admin", "echo", "x", "--runtime-dir", dir, NULL), 0);
    ZT_CHECK(s_contains(s_out, "\"x\""));
    ZT_EQ(zs_cli(s_out, sizeof s_out, "admin", "fail", "--runtime-dir", dir, NULL), 1);
    ZT_EQ(zs_cli(s_out, sizeof s_out, "shutdown", "all", "--runtime-dir", dir, NULL), 0);
    int status = -1;
    for (int i = 0; i < 1000 && waitpid(pid, &status, WNOHANG) == 0; i++)
        zs_sleep_ms(10);
    ZT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char path[128];
    snprintf(path, sizeof path, "%s/admin.key", dir);
    struct stat st;
    ZT_CHECK(stat(path, &st) != 0); //  the generated key is removed at exit
    rmdir(dir);
}

int main(int argc, char **argv)
{
    zs_worker_main(argc, argv);
    zt_redis_t *redis = zt_redis_start();
    ZT_CHECK(redis != NULL);
    if (!redis) return zt_done();
    s_library_checks();
    s_embedded(redis); //  first: it forks, and the test has no threads yet
    const char *opts[] = {"-n", "2", "--redis", zt_redis_url(redis), "--stop-timeout", "5s", NULL};
    const char *worker[] = {NULL};
    zs_master_t *sup = zs_start("admin", opts, worker);
    ZT_CHECK(sup != NULL);
    if (sup) {
        ZT_CHECK(zs_wait_ready(sup, 2, 20000));
        s_keys(sup);
        s_commands(sup);
        s_cli(sup);
        zs_destroy(&sup);
    }
    s_exit_command(redis);
    zt_redis_destroy(&redis);
    return zt_done();
}
