/*  fuzz_keys — libFuzzer target for the credentials file reader
    (zc_security_load): bytes nobody vouches for, from a file a user may
    have edited or truncated.

    Each input is written to a private file (mode 0600) and loaded.
    Checks, beyond not crashing:
    - a file that loads switches to CURVE with a valid 40-character Z85
      public key, and loading it again gives the same key;
    - a file that does not load leaves the NULL mechanism and a reason,
      and the reason never holds the file's secret-key value (40 characters,
      whatever the file says it is).

        ./fuzz_keys -dict=tests/fuzz/keys.dict -max_total_time=60 tests/fuzz/corpus/keys
*/
#include "zc_security.h"
#include "fuzzkit.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static char s_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    snprintf(s_path, sizeof s_path, "/tmp/zc-fuzz-keys-%d", (int)getpid());
    return 0;
}

//  The value after `secret-key` up to the end of its line, into out.
static void s_claimed_secret(const uint8_t *data, size_t size, char *out, size_t cap)
{
    out[0] = 0;
    const uint8_t *at = size >= 10 ? memmem(data, size, "secret-key", 10) : NULL;
    if (!at) return;
    size_t i = (size_t)(at - data) + 10, n = 0;
    while (i < size && (data[i] == ' ' || data[i] == '=' || data[i] == '"'))
        i++;
    while (i < size && n + 1 < cap && data[i] != '"' && data[i] != '\n' && data[i] != 0)
        out[n++] = (char)data[i++];
    out[n] = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = open(s_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, data, size) == (ssize_t)size);
    close(fd);
    zc_security_t *security = zc_security_new();
    int rc = zc_security_load(security, s_path);
    if (rc == 0) {
        CHECK(zc_security_curve(security));
        CHECK(zc_security_key_valid(zc_security_public_key(security)));
        zc_security_t *again = zc_security_new();
        CHECK(zc_security_load(again, s_path) == 0);
        CHECK(strcmp(zc_security_public_key(again), zc_security_public_key(security)) == 0);
        zc_security_destroy(&again);
    } else {
        CHECK(!zc_security_curve(security));
        CHECK(*zc_security_errstr(security));
        char secret[64];
        s_claimed_secret(data, size, secret, sizeof secret);
        CHECK(strlen(secret) != 40 || !strstr(zc_security_errstr(security), secret));
    }
    zc_security_destroy(&security);
    unlink(s_path);
    return 0;
}
