/*  Supervisor: a Redis password shows nowhere. A redis-server with
    requirepass; a supervised cluster (queue workers and a node, the zcluster
    commands themselves) on it, the URL given through $ZC_REDIS_URL only;
    then every output and log line, GET /health, the events published to
    Redis and `ps -eo args` of every process are searched for the password.
    A worker given a wrong password fails, and says so without it. */
#include "supkit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define PASSWORD "pw-Secret-7f3Q"

static char s_out[65536];

//  A TCP port free right now on 127.0.0.1, or 0.
static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

//  Makes the test's Redis listen on 127.0.0.1:port with a password, set at
//  run time so that it is on no command line (the server's included).
static int s_protect(zt_redis_t *redis, int port)
{
    const char *url = zt_redis_url(redis);
    char text[16];
    snprintf(text, sizeof text, "%d", port);
    redisReply *reply[] = {zs_redis(url, "CONFIG SET bind 127.0.0.1"),
                           zs_redis(url, "CONFIG SET port %s", text),
                           zs_redis(url, "CONFIG SET requirepass %s", PASSWORD)};
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        ok &= reply[i] && reply[i]->type == REDIS_REPLY_STATUS;
        if (reply[i] && reply[i]->type == REDIS_REPLY_ERROR)
            fprintf(stderr, "  redis: %s\n", reply[i]->str);
        if (reply[i]) freeReplyObject(reply[i]);
    }
    return ok ? 0 : -1;
}

//  Reads what the master prints until it exits; returns it (the caller
//  frees it).
static char *s_read_output(zt_proc_t *proc)
{
    size_t cap = 1 << 20, used = 0;
    char *all = (char *)calloc(1, cap);
    const char *line;
    while ((line = zt_proc_expect(proc, "", 20000)) != NULL) {
        int n = snprintf(all + used, cap - used, "%s\n", line);
        if (n > 0 && used + (size_t)n < cap) used += (size_t)n;
    }
    return all;
}

//  The running cluster: /health, the published events, ps.
static void s_check_running(zs_master_t *sup, const char *url)
{
    zt_section("GET /health, the events in Redis, ps: no password");
    ZT_CHECK(strstr(sup->first_line, "redis=redis://***@127.0.0.1:") != NULL);
    ZT_CHECK(strstr(sup->first_line, PASSWORD) == NULL);
    json_t *health = zs_get(sup, "/health");
    char *text = health ? json_dumps(health, 0) : NULL;
    ZT_CHECK(text && strstr(text, "redis://***@127.0.0.1:") && !strstr(text, PASSWORD));
    free(text);
    json_decref(health);
    json_t *events = zs_redis_events(url, "secret");
    text = json_dumps(events, 0);
    ZT_CHECK(json_array_size(events) >= 4); //  master started, 3 x started, ...
    ZT_CHECK(text && !strstr(text, PASSWORD));
    free(text);
    json_decref(events);
    json_t *workers = zs_get(sup, "/workers");
    text = workers ? json_dumps(workers, 0) : NULL;
    ZT_CHECK(text && !strstr(text, PASSWORD));
    free(text);
    json_decref(workers);
    ZT_CHECK(zs_ps_clean(PASSWORD));
    ZT_EQ(zs_shell(s_out, sizeof s_out, "ps -eo args"), 0);
    ZT_CHECK(strstr(s_out, "worker --queue jobs") && strstr(s_out, " node"));
}

//  A queue worker given a wrong password is refused, and its error names
//  the server without the password it was given.
static void s_wrong_password(int port)
{
    zt_section("a worker with a wrong password: a clear error, without it");
    char url[128];
    snprintf(url, sizeof url, "redis://:wrong-%s@127.0.0.1:%d", PASSWORD, port);
    setenv("ZC_REDIS_URL", url, 1);
    int rc = zs_shell(s_out, sizeof s_out, "exec \"$ZC_CLI\" worker --queue jobs 2>&1 </dev/null");
    unsetenv("ZC_REDIS_URL");
    printf("  %s", s_out);
    ZT_CHECK(rc != 0);
    ZT_CHECK(strstr(s_out, "zcluster worker:") != NULL);
    ZT_CHECK(strstr(s_out, PASSWORD) == NULL);
}

//  The URL in a file (--redis-file): a worker connects with it, and its
//  output does not repeat it.
static void s_redis_file(const char *url)
{
    zt_section("--redis-file: the URL from a 0600 file");
    char path[] = "/tmp/zc-test-secrets-url-XXXXXX", command[256];
    int fd = mkstemp(path); //  mode 0600
    ZT_CHECK(fd >= 0 && write(fd, url, strlen(url)) == (ssize_t)strlen(url));
    close(fd);
    snprintf(command, sizeof command,
             "exec \"$ZC_CLI\" worker --redis-file %s --queue jobs --id by-file 2>&1 </dev/null",
             path);
    ZT_EQ(zs_shell(s_out, sizeof s_out, command), 0);
    ZT_CHECK(strstr(s_out, "ready by-file") != NULL);
    ZT_CHECK(strstr(s_out, PASSWORD) == NULL);
    unlink(path);
}

int main(int argc, char **argv)
{
    zs_worker_main(argc, argv);
    zt_section("a redis-server with requirepass, and a cluster on it");
    zt_redis_t *redis = zt_redis_start();
    int port = s_free_port();
    ZT_CHECK(redis && port > 0);
    if (!redis || s_protect(redis, port)) {
        ZT_CHECK(!"cannot protect the test's Redis");
        zt_redis_destroy(&redis);
        return zt_done();
    }
    char url[128], log_path[] = "/tmp/zc-test-secrets-XXXXXX", workers[512], node[512];
    snprintf(url, sizeof url, "redis://:%s@127.0.0.1:%d", PASSWORD, port);
    int log_fd = mkstemp(log_path);
    ZT_CHECK(log_fd >= 0);
    close(log_fd);
    const char *cli = getenv("ZC_CLI");
    snprintf(workers, sizeof workers, "jobs:2:%s worker --queue jobs", cli ? cli : "zcluster");
    snprintf(node, sizeof node, "nodes:1:%s node", cli ? cli : "zcluster");
    const char *opts[] = {"--print-events", "--group", workers, "--group", node, NULL};
    setenv("ZC_REDIS_URL", url, 1); //  never on a command line
    zs_master_t *sup = zs_start_logged("secret", opts, NULL, log_path);
    unsetenv("ZC_REDIS_URL");
    ZT_CHECK(sup != NULL);
    if (sup) {
        ZT_CHECK(zs_wait_ready(sup, 3, 30000));
        s_check_running(sup, url);
        zt_section("the master's output and every log line: no password");
        zt_proc_signal(sup->proc, SIGTERM);
        char *output = s_read_output(sup->proc);
        ZT_CHECK(strstr(output, "event master - stopped") != NULL);
        ZT_CHECK(strstr(output, PASSWORD) == NULL);
        free(output);
        ZT_EQ(zs_stop(sup, 0, 20000), 0);
        zs_destroy(&sup);
    }
    char *log = zs_slurp(log_path);
    ZT_CHECK(strstr(log, "master stopped") != NULL);
    ZT_CHECK(strstr(log, PASSWORD) == NULL);
    if (strstr(log, PASSWORD)) fprintf(stderr, "%s", log);
    free(log);
    unlink(log_path);
    s_wrong_password(port);
    s_redis_file(url);
    zt_redis_destroy(&redis);
    return zt_done();
}
