/*  The programs in examples/ run as a new user would run them: each against
    a redis-server of its own (ZC_REDIS_URL), and the supervised worker
    under `zcluster start`, stopped by SIGTERM with every worker ready. */
#include "testkit.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static char s_url_env[400];

//  Runs examples/NAME with the test's Redis; returns its exit status.
static int s_run(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", getenv("ZC_EXAMPLES_DIR"), name);
    char *const argv[] = {path, NULL};
    char *const env[] = {s_url_env, NULL};
    zt_proc_t *proc = zt_proc_start(argv, env);
    ZT_CHECK(proc != NULL);
    if (!proc) return -1;
    int status = zt_proc_wait(proc, 60000);
    zt_proc_destroy(&proc);
    return status;
}

int main(void)
{
    ZT_CHECK(getenv("ZC_EXAMPLES_DIR") != NULL);
    if (!getenv("ZC_EXAMPLES_DIR")) return zt_done();
    zt_redis_t *redis = zt_redis_start();
    ZT_CHECK(redis);
    if (!redis) return zt_done();
    snprintf(s_url_env, sizeof s_url_env, "ZC_REDIS_URL=%s", zt_redis_url(redis));

    const char *names[] = {"messages", "rpc", "cache", "queue"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        zt_section(names[i]);
        int status = s_run(names[i]);
        ZT_CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }

    zt_section("supervised_worker under zcluster start");
    char worker[1024], dir[] = "/tmp/zc-examples-XXXXXX";
    snprintf(worker, sizeof worker, "%s/supervised_worker", getenv("ZC_EXAMPLES_DIR"));
    ZT_CHECK(mkdtemp(dir) != NULL);
    char runtime[64];
    snprintf(runtime, sizeof runtime, "%s/run", dir);
    zt_proc_t *master =
        zt_cli_start("start", "-n", "2", "--name", "examples", "--redis", zt_redis_url(redis),
                     "--runtime-dir", runtime, "--no-admin", "--print-events", "--", worker, NULL);
    ZT_CHECK(master && zt_proc_expect(master, "event ready examples-worker-", 30000));
    ZT_CHECK(master && zt_proc_expect(master, "event ready examples-worker-", 30000));
    zt_proc_signal(master, SIGTERM);
    int status = zt_proc_wait(master, 30000);
    ZT_CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    zt_proc_destroy(&master);
    rmdir(dir);

    zt_redis_destroy(&redis);
    return zt_done();
}
