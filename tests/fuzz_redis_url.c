/*  fuzz_redis_url — libFuzzer target for the Redis URL parser
    (zc_redis_url_parse) and the identity built on it (zc_identity_init).

    The first byte is a mode, the rest up to three lines: a URL, a cluster
    name, a node id (a missing line is a NULL argument, which takes its
    default; the ZC_* variables are cleared so the defaults are fixed). In
    the "secret" mode (odd first byte) the URL is line 1 + ":" + a known
    password + "@" + line 2, so that the target knows what must never show.

    Checks, beyond not crashing:
    - a URL that parses names either a TCP host or a unix socket path, every
      field ends inside its array, the port is 1..65535 and the db 0..65535;
      a host holds no ':', '/' or '@', a path starts with '/' and holds no
      '?'; written back in its plain form (redis://:PASSWORD@HOST:PORT/DB or
      unix://PATH?db=DB) it parses to the same fields, and
      zc_redis_url_where shows exactly HOST:PORT or PATH;
    - a URL that does not parse has a reason, and no reason (URL or
      identity) ever holds the password;
    - an identity that is made has a valid cluster name and node id (or
      none), the key prefix "zc:{CLUSTER}:" and the URL parsed as above.

        ./fuzz_redis_url -dict=tests/fuzz/redis_url.dict -max_total_time=60 \
            tests/fuzz/corpus/redis_url
*/
#include "zc_identity.h"
#include "zc_redis.h"
#include "fuzzkit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "S3cr3t-Pw"

static int s_terminated(const char *field, size_t cap)
{
    return memchr(field, 0, cap) != NULL;
}

//  Checks the fields of a URL that parsed, and that its plain form parses
//  back to them.
static void s_check_parsed(const zc_redis_url_t *url)
{
    CHECK(s_terminated(url->host, sizeof url->host) && s_terminated(url->path, sizeof url->path) &&
          s_terminated(url->password, sizeof url->password) &&
          s_terminated(url->user, sizeof url->user) &&
          s_terminated(url->master, sizeof url->master));
    CHECK(url->db >= 0 && url->db <= 65535);
    CHECK(url->wait_ms >= 0 && url->wait_ms <= 60000 && url->slot == -1);
    CHECK(!*url->host != !*url->path);
    char where[600], plain[1200];
    zc_redis_url_where(url, where, sizeof where);
    if (url->mode != ZC_REDIS_DIRECT) {
        //  Sentinels or cluster nodes: every seed an address, the first
        //  one also in host:port.
        CHECK(url->seed_count >= 1 && url->seed_count <= ZC_REDIS_SEEDS_MAX && !*url->path);
        for (int i = 0; i < url->seed_count; i++)
            CHECK(url->seeds[i].port >= 1 && url->seeds[i].port <= 65535 && *url->seeds[i].host &&
                  !strpbrk(url->seeds[i].host, ":/@,?"));
        CHECK(strcmp(url->host, url->seeds[0].host) == 0 && url->port == url->seeds[0].port);
        CHECK((url->mode == ZC_REDIS_SENTINEL) == (*url->master != 0));
        CHECK(url->mode == ZC_REDIS_SENTINEL || url->db == 0);
        return;
    }
    if (*url->path) {
        CHECK(url->path[0] == '/' && !strchr(url->path, '?') && !*url->password);
        CHECK(strcmp(where, url->path) == 0);
        snprintf(plain, sizeof plain, "unix://%s?db=%d", url->path, url->db);
    } else {
        CHECK(url->port >= 1 && url->port <= 65535);
        CHECK(!strpbrk(url->host, ":/@"));
        char expected[600];
        snprintf(expected, sizeof expected, "%s:%d", url->host, url->port);
        CHECK(strcmp(where, expected) == 0);
        snprintf(plain, sizeof plain, "redis://%s:%s@%s:%d/%d", url->user, url->password, url->host,
                 url->port, url->db);
    }
    zc_redis_url_t again;
    char err[300];
    CHECK(zc_redis_url_parse(plain, &again, err, sizeof err) == 0);
    CHECK(strcmp(again.host, url->host) == 0 && strcmp(again.path, url->path) == 0 &&
          strcmp(again.password, url->password) == 0 && again.port == url->port &&
          again.db == url->db);
}

//  Checks an identity that was made from url, cluster and node_id.
static void s_check_identity(const zc_identity_t *id, const char *url, const char *cluster,
                             const char *node_id)
{
    CHECK(strcmp(id->redis_url, url) == 0);
    zc_redis_url_t parsed;
    char err[300];
    CHECK(zc_redis_url_parse(url, &parsed, err, sizeof err) == 0);
    //  The identity sets the slot of its hash tag; the rest is the URL's.
    CHECK(id->url.slot >= 0 && id->url.slot <= 16383);
    parsed.slot = id->url.slot;
    CHECK(memcmp(&parsed, &id->url, sizeof parsed) == 0);
    CHECK(zc_identity_cluster_valid(id->cluster));
    CHECK(strcmp(id->cluster, cluster ? cluster : ZC_CLUSTER_DEFAULT) == 0);
    char prefix[ZC_PREFIX_MAX + 8];
    snprintf(prefix, sizeof prefix, "zc:{%s}:", id->cluster);
    CHECK(strcmp(id->prefix, prefix) == 0 && id->prefix_len == strlen(prefix));
    CHECK(strcmp(id->node_id, node_id ? node_id : "") == 0);
    CHECK(!*id->node_id || zc_wire_name_valid(id->node_id));
    char key[ZC_PREFIX_MAX + 8];
    CHECK(strcmp(zc_identity_key(id, key, sizeof key, "q"), strcat(prefix, "q")) == 0);
}

static int s_count(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = strstr(text, what); p; p = strstr(p + 1, what))
        n++;
    return n;
}

//  In the secret mode the URL is "LINE1:SECRET@LINE2": a reason shows the
//  secret if it holds it more often than the lines given do (their copies
//  are no secret, and may show).
static int s_secret_shown(char *const lines[4], const char *text)
{
    int given = 0;
    for (int i = 0; i < 4; i++)
        given += lines[i] ? s_count(lines[i], SECRET) : 0;
    return s_count(text, SECRET) > given;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    unsetenv("ZC_REDIS_URL");
    unsetenv("ZC_CLUSTER");
    unsetenv("ZC_NODE_ID");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096) return 0;
    int secret = data[0] & 1;
    char *text = (char *)malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    //  Lines may be empty (an empty name is not a missing one).
    char *lines[4] = {text, NULL, NULL, NULL};
    for (int n = 1; n < 4; n++) {
        char *eol = lines[n - 1] ? strchr(lines[n - 1], '\n') : NULL;
        if (eol) *eol = 0;
        lines[n] = eol ? eol + 1 : NULL;
    }
    char *given[4] = {lines[0], lines[1], lines[2], lines[3]};
    char *url = lines[0];
    char built[4200];
    if (secret) {
        snprintf(built, sizeof built, "%s:" SECRET "@%s", url, lines[1] ? lines[1] : "");
        url = built;
        lines[1] = lines[2];
        lines[2] = lines[3];
    }
    zc_redis_url_t parsed;
    char err[300];
    memset(err, 0x55, sizeof err);
    if (zc_redis_url_parse(url, &parsed, err, sizeof err) == 0) {
        s_check_parsed(&parsed);
        //  The known password is before the last '@', whatever came around it.
        if (secret && !*parsed.path) CHECK(strstr(parsed.password, SECRET) != NULL);
    } else {
        CHECK(s_terminated(err, sizeof err) && *err);
        CHECK(!secret || !s_secret_shown(given, err));
    }
    zc_identity_t id;
    memset(err, 0x55, sizeof err);
    if (zc_identity_init(&id, url, lines[1], lines[2], err, sizeof err) == 0)
        s_check_identity(&id, url, lines[1], lines[2]);
    else {
        CHECK(s_terminated(err, sizeof err) && *err);
        CHECK(!secret || !s_secret_shown(given, err));
    }
    free(text);
    return 0;
}
