/*  zc_admin_request — a request before its handler. See zc_admin_request.h.

    The access key is compared in constant time (for the expected key's
    length), so response timing tells an attacker nothing about how much of
    a guess was right.
*/
#include "zc_admin_request.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int zc_admin_key_equal(const char *expected, const char *given)
{
    size_t want = strlen(expected), got = strlen(given);
    unsigned char diff = want != got || want == 0;
    //  Every byte of expected is compared with something, whatever given is.
    for (size_t i = 0; i < want; i++)
        diff |= (unsigned char)expected[i] ^ (unsigned char)(i < got ? given[i] : 0);
    return diff == 0;
}

zc_admin_request_t *admin_request_new(zc_admin_t *admin, struct MHD_Connection *connection)
{
    zc_admin_request_t *request = (zc_admin_request_t *)calloc(1, sizeof(zc_admin_request_t));
    assert(request);
    request->admin = admin;
    request->connection = connection;
    return request;
}

void admin_request_free(zc_admin_request_t *request)
{
    free(request->path);
    for (int i = 0; i < request->params; i++) {
        free(request->names[i]);
        free(request->values[i]);
    }
    free(request->body);
    free(request);
}

int admin_request_add_param(zc_admin_request_t *request, const char *name, const char *value)
{
    if (request->params == ADMIN_MAX_PARAMS) {
        request->overflow = 1;
        return -1;
    }
    request->names[request->params] = strdup(name);
    request->values[request->params] = strdup(value ? value : "");
    request->params++;
    return 0;
}

const char *admin_given_key(const char *key_header, const char *authorization,
                            const char *key_param)
{
    if (key_header) return key_header;
    if (authorization && strncmp(authorization, "Bearer ", 7) == 0) return authorization + 7;
    return key_param ? key_param : "";
}

static void s_refuse(zc_admin_request_t *request, int status, const char *body)
{
    request->state = ADMIN_REQUEST_ANSWERED;
    request->status = status;
    request->body = strdup(body);
}

static void s_split_path(zc_admin_request_t *request, const char *url)
{
    request->path = strdup(url);
    char *save = NULL;
    for (char *seg = strtok_r(request->path, "/", &save); seg; seg = strtok_r(NULL, "/", &save))
        if (request->argc < ZC_ADMIN_MAX_ARGS)
            request->args[request->argc++] = seg;
        else
            request->overflow = 1;
}

int admin_request_admit(zc_admin_request_t *request, const char *method, const char *url,
                        const char *expected_key, const char *given_key)
{
    assert(request && request->state == ADMIN_REQUEST_NEW);
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) {
        s_refuse(request, 405, "{\"ok\":false,\"error\":\"use GET or POST\"}");
        return -1;
    }
    if (!zc_admin_key_equal(expected_key, given_key)) {
        s_refuse(request, 401, "{\"ok\":false,\"error\":\"wrong or missing access key\"}");
        return -1;
    }
    snprintf(request->method, sizeof request->method, "%s", method);
    s_split_path(request, url);
    if (request->overflow) {
        char body[128];
        snprintf(body, sizeof body,
                 "{\"ok\":false,\"error\":\"at most %d path segments and %d parameters\"}",
                 ZC_ADMIN_MAX_ARGS, ADMIN_MAX_PARAMS);
        s_refuse(request, 400, body);
        return -1;
    }
    request->state = ADMIN_REQUEST_WAITING;
    return 0;
}

const char *zc_admin_request_method(zc_admin_request_t *request)
{
    assert(request);
    return request->method;
}

int zc_admin_request_argc(zc_admin_request_t *request)
{
    assert(request);
    return request->argc;
}

const char *zc_admin_request_arg(zc_admin_request_t *request, int i)
{
    assert(request);
    return i >= 0 && i < request->argc ? request->args[i] : NULL;
}

const char *zc_admin_request_param(zc_admin_request_t *request, const char *name)
{
    assert(request);
    for (int i = 0; i < request->params; i++)
        if (strcmp(request->names[i], name) == 0) return request->values[i];
    return NULL;
}

int zc_admin_request_params(zc_admin_request_t *request, const char *name, const char **out,
                            int max)
{
    assert(request);
    int n = 0;
    for (int i = 0; i < request->params; i++)
        if (strcmp(request->names[i], name) == 0) {
            if (n < max) out[n] = request->values[i];
            n++;
        }
    return n;
}
