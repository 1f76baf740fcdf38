/*  zc_supervisor_runtime — the master's runtime directory.

    One directory per master (mode 0700, ours): master.lock (flocked while
    the master runs, its pid inside: one master per directory), admin.json
    (how the CLI finds the admin API), admin.key (a generated access key,
    mode 0600) and the embedded Redis's socket. Files are written to a
    temporary name and renamed, so a reader never sees half a file; all are
    removed when the master exits, and the directory too if empty.
*/
#include "zc_supervisor_internal.h"
#include "zc_log.h"
#include "zc_private_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

//  Writes DIR/NAME, mode 0600, whole (zc_private_file).
static int s_write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return zc_private_file_write(path, text);
}

static void s_unlink_file(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

//  Creates the directory (0700) or checks that an existing one is ours.
static int s_dir_prepare(zc_supervisor_t *self)
{
    const char *dir = self->runtime_dir;
    if (!*dir)
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_INVALID,
                        "cluster name '%.100s' cannot name a runtime dir: give one (--runtime-dir)",
                        self->name);
    if (mkdir(dir, 0700) && errno != EEXIST)
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_IO, "cannot create runtime dir %s: %s", dir,
                        strerror(errno));
    struct stat st;
    if (lstat(dir, &st) || !S_ISDIR(st.st_mode) || st.st_uid != getuid())
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_IO, "runtime dir %s is not a directory of ours",
                        dir);
    if ((st.st_mode & 077) && chmod(dir, 0700))
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_IO, "cannot make %s private: %s", dir,
                        strerror(errno));
    return 0;
}

//  Takes the directory's lock and writes our pid into it.
static int s_lock(zc_supervisor_t *self)
{
    const char *dir = self->runtime_dir;
    char path[512];
    snprintf(path, sizeof path, "%s/master.lock", dir);
    self->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (self->lock_fd < 0 || flock(self->lock_fd, LOCK_EX | LOCK_NB)) {
        char pid[32] = "?";
        if (self->lock_fd >= 0) {
            ssize_t n = pread(self->lock_fd, pid, sizeof pid - 1, 0);
            pid[n > 0 ? n : 0] = 0;
            pid[strcspn(pid, "\n")] = 0;
            close(self->lock_fd);
        }
        self->lock_fd = -1;
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_LOCKED,
                        "another master (pid %s) runs with runtime dir %s; give another "
                        "--runtime-dir or --name",
                        pid, dir);
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(self->lock_fd, 0) == 0 && pwrite(self->lock_fd, pid, (size_t)len, 0) < 0)
        zc_log(ZC_LOG_WARNING, "supervisor", "cannot write %s", path);
    return 0;
}

int sup_runtime_prepare(zc_supervisor_t *self)
{
    if (s_dir_prepare(self) || s_lock(self)) return -1;
    s_unlink_file(self->runtime_dir, "admin.json");
    return 0;
}

void sup_runtime_cleanup(zc_supervisor_t *self)
{
    if (self->lock_fd < 0) return; //  the directory is another master's, or was never ours
    s_unlink_file(self->runtime_dir, "admin.json");
    if (self->key_generated) s_unlink_file(self->runtime_dir, "admin.key");
    s_unlink_file(self->runtime_dir, "master.lock");
    close(self->lock_fd);
    self->lock_fd = -1;
    rmdir(self->runtime_dir); //  only if empty
}

int sup_key_prepare(zc_supervisor_t *self)
{
    if (self->key) {
        s_unlink_file(self->runtime_dir, "admin.key"); //  a stale generated key would mislead
        return 0;
    }
    unsigned char bytes[24];
    if (getrandom(bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes)
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_SYSTEM, "getrandom: %s", strerror(errno));
    char hex[sizeof bytes * 2 + 2];
    for (size_t i = 0; i < sizeof bytes; i++)
        snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
    self->key = strdup(hex);
    self->key_generated = 1;
    strcat(hex, "\n");
    if (s_write_file(self->runtime_dir, "admin.key", hex))
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_IO, "cannot write %s/admin.key",
                        self->runtime_dir);
    return 0;
}

//  Writes admin.json: how the CLI finds the admin API.
int sup_admin_info_write(zc_supervisor_t *self)
{
    int port = zc_admin_port(self->admin);
    char shown[1100]; //  the URL without its password: the file is for people and tools
    json_t *info =
        json_pack("{s:i, s:i, s:s, s:s, s:I}", "pid", (int)getpid(), "port", port, "cluster",
                  self->name, "redis", zc_redis_url_redact(self->redis_url, shown, sizeof shown),
                  "started", (json_int_t)zclock_time());
    char url[128];
    json_object_set_new(info, "url", json_string(zc_admin_url(self->admin, url, sizeof url)));
    char *text = json_dumps(info, JSON_INDENT(2));
    json_decref(info);
    int rc = text ? s_write_file(self->runtime_dir, "admin.json", text) : -1;
    free(text);
    if (rc)
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_IO, "cannot write %s/admin.json",
                        self->runtime_dir);
    return 0;
}
