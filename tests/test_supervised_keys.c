/*  A supervised cluster is authenticated with nothing to set up (issue 12).

    `zcluster start` given no credentials makes a cluster key pair in its
    runtime directory (cluster.keys, mode 0600) and hands its workers the
    PATH in ZC_KEYS: their nodes publish the cluster's public key in the
    registry, and no process on the machine shows the secret key on its
    command line (what `ps` prints). The file goes when the master stops.
    A master given a credentials file open to group or others refuses to
    start, saying why. */
#include "supkit.h"
#include "zcluster.h"

#include <dirent.h>
#include <sys/stat.h>

//  Reads a whole small file into out (NUL-terminated; NULs become spaces,
//  as ps shows a command line). Returns the length, or -1.
static long s_read(const char *path, char *out, size_t cap)
{
    FILE *file = fopen(path, "r");
    if (!file) return -1;
    size_t n = fread(out, 1, cap - 1, file);
    fclose(file);
    for (size_t i = 0; i < n; i++)
        if (out[i] == 0) out[i] = ' ';
    out[n] = 0;
    return (long)n;
}

//  Counts the processes whose command line contains text.
static int s_cmdlines_with(const char *text)
{
    DIR *proc = opendir("/proc");
    int count = 0;
    struct dirent *entry;
    while (proc && (entry = readdir(proc)) != NULL) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
        char path[300], cmdline[65536];
        snprintf(path, sizeof path, "/proc/%s/cmdline", entry->d_name);
        if (s_read(path, cmdline, sizeof cmdline) > 0 && strstr(cmdline, text)) count++;
    }
    if (proc) closedir(proc);
    return count;
}

//  The value of `name = "..."` in a credentials file's text, into out.
static int s_key_field(const char *text, const char *name, char *out)
{
    const char *at = strstr(text, name);
    return at && sscanf(at + strlen(name), " = \"%40[^\"]\"", out) == 1 ? 0 : -1;
}

static void s_test_generated(void)
{
    zt_section("start makes the workers' credentials");
    const char *opts[] = {"-n", "2", NULL};
    const char *worker[] = {"--node", NULL};
    zs_master_t *master = zs_start("keys", opts, worker);
    ZT_CHECK(master);
    if (!master) return;
    ZT_CHECK(zs_wait_ready(master, 2, 20000));
    char path[300], text[1024], public_key[41] = "", secret_key[41] = "";
    snprintf(path, sizeof path, "%s/cluster.keys", master->dir);
    struct stat st;
    ZT_EQ(stat(path, &st), 0);
    ZT_EQ(st.st_mode & 0777, 0600);
    ZT_CHECK(s_read(path, text, sizeof text) > 0);
    ZT_EQ(s_key_field(text, "public-key", public_key), 0);
    ZT_EQ(s_key_field(text, "secret-key", secret_key), 0);
    ZT_EQ(strlen(secret_key), 40);

    zt_section("workers get its path, never the key; ps shows no key");
    int pids[4];
    int count = zs_pids(master, pids, 4);
    ZT_EQ(count, 2);
    char expected[400];
    snprintf(expected, sizeof expected, "ZC_KEYS=%s", path);
    for (int i = 0; i < count; i++) {
        char environ_path[64], environ_text[65536];
        snprintf(environ_path, sizeof environ_path, "/proc/%d/environ", pids[i]);
        ZT_CHECK(s_read(environ_path, environ_text, sizeof environ_text) > 0);
        ZT_CHECK(strstr(environ_text, expected));
        ZT_CHECK(!strstr(environ_text, secret_key));
    }
    ZT_EQ(s_cmdlines_with(secret_key), 0);
    ZT_EQ(s_cmdlines_with(public_key), 0);

    zt_section("their records carry the cluster's public key");
    const char *redis = strstr(master->first_line, "redis=");
    char url[512] = "", id[64], key[128];
    if (redis) sscanf(redis, "redis=%511s", url);
    for (int i = 0; i < 2; i++) {
        zs_worker_id(master, i, id, sizeof id);
        snprintf(key, sizeof key, "zc:{keys}:node:%s", id);
        redisReply *reply = zs_redis(url, "HGET %s curve", key);
        ZT_CHECK(reply && reply->type == REDIS_REPLY_STRING && strcmp(reply->str, public_key) == 0);
        if (reply) freeReplyObject(reply);
    }

    zt_section("the file goes with the master");
    ZT_EQ(zs_stop(master, SIGTERM, 20000), 0);
    ZT_CHECK(stat(path, &st) != 0);
    zs_destroy(&master);
}

static void s_test_refused(void)
{
    zt_section("a master refuses credentials open to others");
    char dir[] = "/tmp/zc-test-keys-XXXXXX";
    ZT_CHECK(mkdtemp(dir) != NULL);
    char command[1024], out[8192] = "";
    snprintf(command, sizeof command,
             "\"$ZC_CLI\" keygen -o %s/open.keys >/dev/null && chmod 644 %s/open.keys && "
             "exec \"$ZC_CLI\" start --name keys2 --runtime-dir %s/run --no-admin "
             "--keys %s/open.keys -n 1 -- true 2>&1",
             dir, dir, dir, dir);
    char *argv[] = {"sh", "-c", command, NULL};
    zt_proc_t *proc = zt_proc_start(argv, NULL);
    const char *line;
    while (proc && (line = zt_proc_expect(proc, "", 20000)) != NULL)
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s\n", line);
    int status = proc ? zt_proc_wait(proc, 20000) : -1;
    zt_proc_destroy(&proc);
    ZT_CHECK(status > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 1);
    ZT_CHECK(strstr(out, "mode 0644: group or others may read or write it"));
    snprintf(command, sizeof command, "rm -rf %s", dir);
    ZT_EQ(system(command), 0);
}

int main(int argc, char **argv)
{
    zs_worker_main(argc, argv);
    unsetenv("ZC_KEYS"); //  the master makes its own
    s_test_generated();
    s_test_refused();
    return zt_done();
}
