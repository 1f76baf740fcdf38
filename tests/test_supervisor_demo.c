/*  The README's main job: `zcluster demo` runs a supervised cluster (master,
    private redis-server, worker processes exchanging messages and sharing
    tasks, a respawn, a rolling reload, a graceful stop) and says OK. */
#include "supkit.h"

static char s_out[65536];

int main(int argc, char **argv)
{
    zs_worker_main(argc, argv);
    zt_section("zcluster demo, defaults");
    unsetenv("ZC_REDIS_URL");
    int64_t start = zt_now_ms();
    ZT_EQ(zs_cli(s_out, sizeof s_out, "demo", NULL), 0);
    printf("%s", s_out);
    printf("zcluster demo took %lld ms\n", (long long)(zt_now_ms() - start));
    ZT_CHECK(strstr(s_out, "\nOK: every worker got 1000 public messages") != NULL);
    ZT_CHECK(strstr(s_out, "never fewer than 4 of 4 ready") != NULL);
    ZT_CHECK(strstr(s_out, "master exited with code 0") != NULL);
    ZT_CHECK(zt_now_ms() - start < 60000);

    zt_section("zcluster demo, three workers against a given Redis");
    zt_redis_t *redis = zt_redis_start();
    ZT_CHECK(redis != NULL);
    if (redis) {
        ZT_EQ(zs_cli(s_out, sizeof s_out, "demo", "--workers", "3", "--count", "300", "--tasks",
                     "90", "--redis", zt_redis_url(redis), NULL),
              0);
        ZT_CHECK(strstr(s_out, "\nOK: ") != NULL);
        ZT_CHECK(strstr(s_out, "a master supervising 3 worker processes and the given Redis"));
        zt_redis_destroy(&redis);
    }
    ZT_EQ(zs_cli(s_out, sizeof s_out, "demo", "--workers", "1", NULL), 64);
    return zt_done();
}
