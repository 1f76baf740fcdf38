/*  zc_supervisor_keys — the cluster credentials a master gives its workers.

    Secure with nothing to set up: a master given no credentials file
    ($ZC_KEYS, which `zcluster start --keys FILE` sets) makes a new cluster
    key pair in its runtime directory (cluster.keys, mode 0600, in a
    directory of mode 0700) and points $ZC_KEYS at it, so every worker
    inherits the path through its environment: the key itself is never on a
    command line, where `ps` would show it. A given file is checked here,
    so that a master with unusable credentials stops at once with the
    reason instead of every worker failing after it.
*/
#include "zc_supervisor_internal.h"
#include "zc_log.h"
#include "zc_security.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEYS_FILE "cluster.keys"

int sup_keys_prepare(zc_supervisor_t *self)
{
    zc_security_t *security = zc_security_new();
    if (!security) return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_SYSTEM, "out of memory");
    const char *given = getenv("ZC_KEYS");
    int rc = 0;
    if (given && *given) {
        if (zc_security_load(security, given))
            rc = sup_fail(self, ZC_LOG_ERROR, ZC_ERR_INVALID, "%s", zc_security_errstr(security));
    } else {
        char path[sizeof self->keys_generated];
        snprintf(path, sizeof path, "%s/%s", self->runtime_dir, KEYS_FILE);
        unlink(path); //  a file left by a master that died: never reused
        if (zc_security_set_curve(security, NULL, NULL))
            rc = sup_fail(self, ZC_LOG_ERROR, ZC_ERR_SYSTEM, "libzmq has no CURVE support");
        else if (zc_security_save(security, path))
            rc = sup_fail(self, ZC_LOG_ERROR, ZC_ERR_IO, "%s", zc_security_errstr(security));
        else if (setenv("ZC_KEYS", path, 1))
            rc = sup_fail(self, ZC_LOG_ERROR, ZC_ERR_SYSTEM, "setenv: %s", strerror(errno));
        else
            snprintf(self->keys_generated, sizeof self->keys_generated, "%s", path);
    }
    zc_security_destroy(&security);
    return rc;
}

void sup_keys_cleanup(zc_supervisor_t *self)
{
    if (!*self->keys_generated) return;
    unlink(self->keys_generated);
    //  A later master in this process must make its own again.
    const char *keys = getenv("ZC_KEYS");
    if (keys && strcmp(keys, self->keys_generated) == 0) unsetenv("ZC_KEYS");
    self->keys_generated[0] = 0;
}
