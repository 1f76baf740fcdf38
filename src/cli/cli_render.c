/*  cli_render — showing data from Redis on one line: text with control
    characters escaped, msgpack values as text (a str as its text, anything
    else in msgpack-c's notation), so that a value never breaks a line
    answer of the CLI. Used by `zcluster cache` and `zcluster queue`.
*/
#include "cli_render.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

//  Appends text to out with control characters, backslash and DEL escaped.
void cli_render_text(FILE *out, const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\\')
            fputs("\\\\", out);
        else if (c == '\n')
            fputs("\\n", out);
        else if (c == '\t')
            fputs("\\t", out);
        else if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
}

//  Writes a msgpack value (already checked to be one object) for display.
void cli_render_msgpack(FILE *out, const void *value, size_t size)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    size_t offset = 0;
    if (msgpack_unpack_next(&unpacked, (const char *)value, size, &offset) !=
        MSGPACK_UNPACK_SUCCESS) {
        //  Valid but beyond msgpack-c's nesting limit: show the bytes.
        fputs("0x", out);
        for (size_t i = 0; i < size; i++)
            fprintf(out, "%02x", ((const unsigned char *)value)[i]);
    } else if (unpacked.data.type == MSGPACK_OBJECT_STR)
        cli_render_text(out, unpacked.data.via.str.ptr, unpacked.data.via.str.size);
    else {
        //  msgpack-c stops printing when the buffer is full: a huge value is cut.
        size_t cap = size < 65536 ? 16 * size + 256 : 1024 * 1024;
        char *text = (char *)malloc(cap);
        if (text) {
            int len = msgpack_object_print_buffer(text, cap, unpacked.data);
            cli_render_text(out, text, len > 0 ? strnlen(text, (size_t)len) : 0);
            free(text);
        }
    }
    msgpack_unpacked_destroy(&unpacked);
}
