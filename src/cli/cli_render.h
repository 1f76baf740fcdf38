/*  cli_render — showing data from Redis on one line (see cli_render.c). */
#ifndef CLI_RENDER_H_INCLUDED
#define CLI_RENDER_H_INCLUDED

#include <stddef.h>
#include <stdio.h>

//  Appends text (len bytes) to out with control characters, backslash and
//  DEL escaped.
void cli_render_text(FILE *out, const char *text, size_t len);

//  Writes a msgpack value (one object, already checked) for display.
void cli_render_msgpack(FILE *out, const void *value, size_t size);

#endif
