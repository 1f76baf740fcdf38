/*  fuzz_admin — libFuzzer target for the admin API's request handling:
    admission (method, access key, path, parameters; zc_admin_request.c)
    and the commands behind it (sup_admin_handle), without an HTTP server:
    the request arrives as libmicrohttpd would hand it over, decoded.

    The input is lines: a flags byte, then the method, the URL path, the
    X-Zcluster-Key header, the Authorization header, the key parameter, and
    one query parameter per further line ("name=value", or "name" for one
    without a value). Flags bits 0-2 say which of the three key lines are
    present at all; bits 3-5 replace each by the right key (so that most
    inputs get past the key). Every input meets a fresh master that runs no
    worker: groups "web" (failed, with worker fuzz-worker-1 in backoff) and
    "api", and an application command "echo".

    Checks, beyond not crashing:
    - a request is admitted exactly when its method is GET or POST and the
      key it gives (X-Zcluster-Key, else Authorization: Bearer, else ?key=)
      is the master's, and it has at most 16 path segments and 64
      parameters: its handler sees each of them;
    - an answer has a known status and a JSON object with a boolean "ok"
      (but /metrics, Prometheus text); an error status has ok false and an
      "error" text;
    - a request left unanswered is held by the master (a shutdown or reload
      waiting for it), an answered one by nobody; no worker is started.

        ./fuzz_admin -dict=tests/fuzz/admin.dict -max_total_time=60 tests/fuzz/corpus/admin
*/
#include "zc_admin_request.h"
#include "zc_log.h"
#include "zc_supervisor_internal.h"
#include "fuzzkit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY "fuzz-admin-key"

//  The application command: "fail" fails, "raw TEXT" answers TEXT (JSON or
//  not), anything else answers its arguments as a JSON array.
static char *s_echo(zc_supervisor_t *self, int argc, const char **argv, char *err, size_t errlen,
                    void *arg)
{
    if (argc > 1 && strcmp(argv[1], "fail") == 0) {
        snprintf(err, errlen, "failed: %s", argv[argc - 1]);
        return NULL;
    }
    if (argc > 1 && strcmp(argv[1], "raw") == 0) return strdup(argc > 2 ? argv[2] : "");
    json_t *args = json_array();
    for (int i = 0; i < argc; i++)
        json_array_append_new(args, json_string(argv[i]));
    char *text = json_dumps(args, JSON_COMPACT);
    json_decref(args);
    return text;
}

//  A master as it is before zc_supervisor_run, plus one slot in backoff in a
//  failed group: restart and shutdown can find a worker, and a reload has
//  nothing it may start.
static zc_supervisor_t *s_master_new(void)
{
    zc_supervisor_t *sup = zc_supervisor_new("fuzz");
    char *argv[] = {(char *)"/bin/false", NULL};
    CHECK(sup && zc_supervisor_add_group(sup, "web", 1, argv) == 0 &&
          zc_supervisor_add_group(sup, "api", 2, argv) == 0 &&
          zc_supervisor_command(sup, "echo", "answers its arguments", s_echo, NULL) == 0);
    zc_supervisor_set_key(sup, KEY);
    sup_group_t *web = sup->groups[0];
    web->failed = 1;
    sup_slot_t *slot = (sup_slot_t *)calloc(1, sizeof(sup_slot_t));
    slot->group = web;
    slot->state = SUP_BACKOFF;
    slot->number = 1;
    slot->argv = sup_argv_copy(argv);
    web->slots = (sup_slot_t **)calloc(1, sizeof(sup_slot_t *));
    web->slots[web->slot_count++] = slot;
    return sup;
}

//  Splits the input into NUL-terminated lines (in place); returns their count.
static int s_lines(char *text, char **lines, int max)
{
    int n = 0;
    for (char *line = text; line && n < max; n++) {
        lines[n] = line;
        char *eol = strchr(line, '\n');
        if (eol) *eol = 0;
        line = eol ? eol + 1 : NULL;
    }
    return n;
}

//  The number of segments in a path (empty ones, as in "//", do not count).
static int s_segments(const char *path)
{
    int n = 0;
    for (const char *p = path; *p; p++)
        n += *p != '/' && (p == path || p[-1] == '/');
    return n;
}

static int s_waited_by(zc_supervisor_t *sup, zc_admin_request_t *request)
{
    int n = 0;
    for (int i = 0; i < sup->shutdown_waiter_count; i++)
        n += sup->shutdown_waiters[i] == request;
    for (int i = 0; i < sup->reload.waiter_count; i++)
        n += sup->reload.waiters[i] == request;
    return n;
}

static void s_check_answer(zc_admin_request_t *request)
{
    static const int known[] = {200, 202, 400, 401, 404, 405, 409, 500, 503};
    int status_known = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        status_known |= request->status == known[i];
    CHECK(status_known && request->body);
    if (request->content_type) { //  GET /metrics: Prometheus text, not JSON
        CHECK(request->status == 200 && strncmp(request->content_type, "text/plain", 10) == 0);
        return;
    }
    json_t *body = json_loads(request->body, 0, NULL);
    CHECK(json_is_object(body) && json_is_boolean(json_object_get(body, "ok")));
    if (request->status >= 400)
        CHECK(json_is_false(json_object_get(body, "ok")) &&
              json_is_string(json_object_get(body, "error")));
    json_decref(body);
}

//  The key the request gives, as the API promises to read it; key_param is
//  the first key parameter, or NULL.
static const char *s_expected_given(int flags, char *const *lines, const char *key_param)
{
    if (flags & 1) return lines[2];
    if ((flags & 2) && strncmp(lines[3], "Bearer ", 7) == 0) return lines[3] + 7;
    return key_param ? key_param : "";
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    zc_log_set_level(ZC_LOG_ERROR);
    unsetenv("ZC_REDIS_URL");
    unsetenv("ZC_ADMIN_KEY");
    unsetenv("ZC_CLUSTER");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192) return 0;
    int flags = data[0];
    char *text = (char *)calloc(1, size);
    memcpy(text, data + 1, size - 1);
    char *lines[5 + 80];
    int n = s_lines(text, lines, 5 + 80);
    for (int i = n; i < 5; i++)
        lines[i] = (char *)"";
    if (flags & 8) lines[2] = (char *)KEY;
    if (flags & 16) lines[3] = (char *)"Bearer " KEY;
    if (flags & 32) lines[4] = (char *)KEY;

    zc_supervisor_t *sup = s_master_new();
    zc_admin_request_t *request = admin_request_new(NULL, NULL);
    const char *key_param = NULL;
    if (flags & 4) {
        admin_request_add_param(request, "key", lines[4]);
        key_param = lines[4];
    }
    for (int i = 5; i < n; i++) {
        char *eq = strchr(lines[i], '=');
        if (eq) *eq = 0;
        if (admin_request_add_param(request, lines[i], eq ? eq + 1 : NULL) == 0 && !key_param &&
            strcmp(lines[i], "key") == 0)
            key_param = eq ? eq + 1 : "";
    }
    const char *given = admin_given_key(flags & 1 ? lines[2] : NULL, flags & 2 ? lines[3] : NULL,
                                        zc_admin_request_param(request, "key"));
    CHECK(strcmp(given, s_expected_given(flags, lines, key_param)) == 0);
    int admitted = admin_request_admit(request, lines[0], lines[1], KEY, given) == 0;
    int params = (flags & 4 ? 1 : 0) + (n > 5 ? n - 5 : 0);
    CHECK(admitted ==
          ((!strcmp(lines[0], "GET") || !strcmp(lines[0], "POST")) && !strcmp(given, KEY) &&
           s_segments(lines[1]) <= ZC_ADMIN_MAX_ARGS && params <= ADMIN_MAX_PARAMS));
    //  What the handler sees is the whole request.
    CHECK(!admitted || (request->argc == s_segments(lines[1]) && request->params == params));
    if (admitted) sup_admin_handle(request, sup);
    CHECK(!sup->procs);
    if (request->state == ADMIN_REQUEST_ANSWERED) {
        s_check_answer(request);
        CHECK(s_waited_by(sup, request) == 0);
    } else {
        CHECK(request->state == ADMIN_REQUEST_WAITING && s_waited_by(sup, request) == 1);
        zc_admin_reply(request, 200, "{\"ok\":true}");
    }
    admin_request_free(request);
    zc_supervisor_destroy(&sup);
    free(text);
    return 0;
}
