/*  zc_registry_record — reading records and announcements. See
    zc_registry_record.h; the formats are in docs/REGISTRY.md.
*/
#include "zc_registry_record.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The groups field: names separated by spaces. A word that is not a valid
//  group name (a control character, too long) names no group a node could
//  join, so it is left out.
static json_t *s_groups(const char *text)
{
    json_t *groups = json_array();
    char *copy = strdup(text), *save = NULL;
    for (char *g = strtok_r(copy, " ", &save); g; g = strtok_r(NULL, " ", &save))
        if (zc_wire_name_valid(g)) json_array_append_new(groups, json_string(g));
    free(copy);
    return groups;
}

json_t *zc_registry_record_parse(const redisReply *reply, const char *id)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements % 2) return NULL;
    json_t *record = json_object();
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        redisReply *k = reply->element[i], *v = reply->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        if (strcmp(k->str, "groups") == 0)
            json_object_set_new(record, "groups", s_groups(v->str));
        else if (strcmp(k->str, "headers") == 0) {
            json_t *headers = json_loads(v->str, 0, NULL);
            json_object_set_new(record, "headers",
                                json_is_object(headers) ? headers : json_object());
            if (headers && !json_is_object(headers)) json_decref(headers);
        } else if (strcmp(k->str, "pid") == 0 || strcmp(k->str, "started") == 0)
            json_object_set_new(record, k->str, json_integer(atoll(v->str)));
        else
            json_object_set_new(record, k->str, json_string(v->str));
    }
    const char *fields[] = {"id", "inc", "pub", "router"};
    int usable = 1;
    for (int i = 0; i < 4; i++)
        usable = usable && json_is_string(json_object_get(record, fields[i]));
    //  The record must be the one asked for: a record naming another node
    //  (or no valid node) would be added under a name that is not its key.
    usable = usable && zc_wire_name_valid(id) &&
             strcmp(json_string_value(json_object_get(record, "id")), id) == 0;
    //  The incarnation is matched against the announcements' words and kept
    //  in ZC_INC_MAX bytes: one that is not a word, or longer, never matches.
    const char *inc = usable ? json_string_value(json_object_get(record, "inc")) : "";
    usable = usable && zc_wire_name_valid(inc) && strlen(inc) <= ZC_INC_MAX;
    if (!usable) json_decref(record);
    return usable ? record : NULL;
}

//  Copies the next word of *text (words are separated by white space) into
//  out, of cap bytes, and moves past it. Returns its length, 0 at the end of
//  the text, or -1 if it does not fit: a word is never cut short, since a
//  piece of an id may be another node's id.
static int s_word(const char **text, char *out, size_t cap)
{
    const char *p = *text;
    while (isspace((unsigned char)*p))
        p++;
    size_t len = 0;
    while (p[len] && !isspace((unsigned char)p[len]))
        len++;
    *text = p + len;
    if (len >= cap) return -1;
    memcpy(out, p, len);
    out[len] = 0;
    return (int)len;
}

int zc_registry_announcement_parse(const char *text, size_t len, zc_announcement_t *out)
{
    char verb[8], reason[sizeof out->reason], more[2];
    snprintf(out->reason, sizeof out->reason, "left");
    out->inc[0] = 0;
    if (memchr(text, 0, len) || s_word(&text, verb, sizeof verb) <= 0 ||
        s_word(&text, out->id, sizeof out->id) <= 0 || !zc_wire_name_valid(out->id))
        return -1;
    if (strcmp(verb, "join") == 0)
        out->verb = ZC_ANNOUNCE_JOIN;
    else if (strcmp(verb, "update") == 0)
        out->verb = ZC_ANNOUNCE_UPDATE;
    else if (strcmp(verb, "leave") == 0) {
        out->verb = ZC_ANNOUNCE_LEAVE;
        int n = s_word(&text, reason, sizeof reason);
        if (n > 0) memcpy(out->reason, reason, sizeof reason);
        if (n < 0 || (n > 0 && s_word(&text, out->inc, sizeof out->inc) < 0)) return -1;
    } else
        return -1;
    return s_word(&text, more, sizeof more) == 0 ? 0 : -1; //  nothing after
}
