/*  vectorkit — the test vectors of docs/PROTOCOL.md. See vectorkit.h. */
#include "vectorkit.h"
#include "testkit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Parses space-separated hex bytes and, if marks is set, `|` marks between
//  them; returns 0, or -1 on anything else.
static int s_parse_hex(const char *text, zt_frame_t *frame, int marks)
{
    frame->size = 0;
    frame->marks = 0;
    while (*text) {
        if (*text == ' ') {
            text++;
            continue;
        }
        if (*text == '|') {
            if (!marks || frame->marks == ZT_MARK_MAX || (text[1] != ' ' && text[1] != 0))
                return -1;
            frame->mark[frame->marks++] = frame->size;
            text++;
            continue;
        }
        unsigned int byte;
        int used = 0;
        if (sscanf(text, "%2x%n", &byte, &used) != 1 || used != 2 ||
            (text[2] != ' ' && text[2] != 0) || frame->size == ZT_VECTOR_BYTES)
            return -1;
        frame->data[frame->size++] = (uint8_t)byte;
        text += 2;
    }
    return 0;
}

static char *s_read_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (!file) return NULL;
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fseek(file, 0, SEEK_SET);
    char *text = (char *)malloc((size_t)size + 1);
    size_t got = fread(text, 1, (size_t)size, file);
    text[got] = 0;
    fclose(file);
    return text;
}

int zt_vectors_load(zt_vector_t *vectors, int max)
{
    char path[4096];
    const char *root = getenv("ZC_SOURCE_DIR");
    if (root)
        snprintf(path, sizeof path, "%s/docs/PROTOCOL.md", root);
    else {
        //  Run by hand: find the document next to this source file.
        snprintf(path, sizeof path, "%s", __FILE__);
        char *slash = strrchr(path, '/');
        snprintf(slash ? slash : path, sizeof path - (size_t)(slash ? slash - path : 0),
                 "%s../docs/PROTOCOL.md", slash ? "/" : "");
    }
    char *text = s_read_file(path);
    if (!text) {
        fprintf(stderr, "cannot read %s (set ZC_SOURCE_DIR to the source tree)\n", path);
        return -1;
    }
    zt_vector_t *vector = NULL;
    int line_number = 0, count = 0;
    //  Line by line, keeping empty lines so that line numbers stay right.
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        line_number++;
        if (strcmp(line, "```vector") == 0) {
            ZT_CHECK(vector == NULL);
            ZT_CHECK(count < max);
            if (count == max) break;
            vector = &vectors[count++];
            memset(vector, 0, sizeof *vector);
            vector->line = line_number;
            continue;
        }
        if (!vector) continue;
        if (strcmp(line, "```") == 0) {
            vector = NULL;
            continue;
        }
        char *colon = strchr(line, ':');
        if (!ZT_CHECK(colon != NULL)) {
            fprintf(stderr, "  vector line without a key: %s\n", line);
            continue;
        }
        *colon = 0;
        const char *key = line, *value = colon + 1;
        while (*value == ' ')
            value++;
        int bad_hex = 0;
        if (strcmp(key, "name") == 0)
            snprintf(vector->name, sizeof vector->name, "%s", value);
        else if (strcmp(key, "via") == 0)
            snprintf(vector->via, sizeof vector->via, "%s", value);
        else if (strcmp(key, "frame") == 0) {
            if (ZT_CHECK(vector->frames < ZT_VECTOR_FRAMES))
                bad_hex = s_parse_hex(value, &vector->frame[vector->frames++], 1);
        } else if (strcmp(key, "routing-id") == 0) {
            bad_hex = s_parse_hex(value, &vector->routing_id, 0);
            vector->has_routing_id = 1;
        } else if (strcmp(key, "result") == 0)
            snprintf(vector->result, sizeof vector->result, "%s", value);
        else if (strcmp(key, "canonical") == 0)
            vector->canonical = strcmp(value, "yes") == 0;
        else if (strcmp(key, "decoded") == 0)
            snprintf(vector->decoded, sizeof vector->decoded, "%s", value);
        else if (strcmp(key, "rpc") == 0)
            snprintf(vector->rpc, sizeof vector->rpc, "%s", value);
        else if (strcmp(key, "batch") == 0)
            vector->batch = strcmp(value, "yes") == 0;
        else if (strcmp(key, "entry") == 0) {
            if (ZT_CHECK(vector->entries < ZT_ENTRY_MAX))
                snprintf(vector->entry[vector->entries++], sizeof vector->entry[0], "%s", value);
        } else {
            fprintf(stderr, "  unknown vector key '%s' at line %d\n", key, line_number);
            ZT_CHECK(0);
        }
        if (!ZT_CHECK(bad_hex == 0))
            fprintf(stderr, "  bad hex in %s of vector at line %d\n", key, vector->line);
    }
    ZT_CHECK(vector == NULL); //  every block closed
    free(text);
    return count;
}

zt_vector_t *zt_vector_find(zt_vector_t *vectors, int count, const char *name)
{
    for (int i = 0; i < count; i++)
        if (strcmp(vectors[i].name, name) == 0) return &vectors[i];
    return NULL;
}
