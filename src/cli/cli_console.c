/*  cli_console — the line console of `zcluster node`, `worker` and `cache`.

    Input is read with read(2), not stdio, because node and worker poll
    stdin next to their sockets: a stdio buffer could hold lines poll never
    reports. What was read is kept in one buffer until its lines are
    complete; it grows up to line_max + 1 bytes (or without bound).
*/
#include "cli_console.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_BLANKS " \t"

struct _cli_console_t {
    const cli_command_t *commands;
    void *self; //  given to handlers and the wait hook
    const char *wrong_args;
    size_t line_max; //  0: any
    cli_wait_fn *wait;
    int keep_serving;
    int stopped;
    //  The answer of the command that ran last.
    cli_answer_t kind;
    const cli_command_t *command;
    char *text;
    size_t text_cap;
    //  Input not run yet.
    char *buffer;
    size_t used, cap;
    int skipping; //  dropping the rest of a line that was too long
};

cli_console_t *cli_console_new(const cli_command_t *commands, void *self)
{
    cli_console_t *console = (cli_console_t *)calloc(1, sizeof *console);
    if (!console) return NULL;
    console->commands = commands;
    console->self = self;
    console->wrong_args = "unknown command or wrong arguments";
    console->text_cap = 256;
    console->text = (char *)calloc(1, console->text_cap);
    if (!console->text) cli_console_destroy(&console);
    return console;
}

void cli_console_destroy(cli_console_t **self_p)
{
    if (!self_p || !*self_p) return;
    free((*self_p)->text);
    free((*self_p)->buffer);
    free(*self_p);
    *self_p = NULL;
}

void cli_console_set_wrong_args(cli_console_t *self, const char *text)
{
    self->wrong_args = text;
}

void cli_console_set_line_max(cli_console_t *self, size_t line_max)
{
    self->line_max = line_max;
}

void cli_console_set_wait(cli_console_t *self, cli_wait_fn *wait, int keep_serving)
{
    self->wait = wait;
    self->keep_serving = keep_serving;
}

//  --------------------------------------------------------------------------
//  Answers

//  Keeps an answer of this kind with its text formatted from format.
static void s_answer(cli_console_t *self, cli_answer_t kind, const char *format, va_list args)
{
    va_list copy;
    va_copy(copy, args);
    int len = vsnprintf(self->text, self->text_cap, format, copy);
    va_end(copy);
    if (len >= 0 && (size_t)len >= self->text_cap) {
        char *text = (char *)realloc(self->text, (size_t)len + 1);
        if (text) {
            self->text = text;
            self->text_cap = (size_t)len + 1;
            vsnprintf(self->text, self->text_cap, format, args);
        }
    }
    self->kind = kind;
}

void cli_console_ok(cli_console_t *self, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    s_answer(self, CLI_ANSWER_OK, format, args);
    va_end(args);
}

void cli_console_error(cli_console_t *self, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    s_answer(self, CLI_ANSWER_ERROR, format, args);
    va_end(args);
}

void cli_console_line(cli_console_t *self, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    s_answer(self, CLI_ANSWER_LINE, format, args);
    va_end(args);
}

const char *cli_console_answer(cli_console_t *self)
{
    if (self->kind == CLI_ANSWER_USAGE) return self->command ? self->command->usage : NULL;
    return self->text;
}

void cli_console_stop(cli_console_t *self)
{
    self->stopped = 1;
}

int cli_console_quit(cli_console_t *console, void *self, int argc, char **argv)
{
    cli_console_stop(console);
    return 0;
}

int cli_console_stdin_null(void)
{
    struct stat in, null;
    if (fstat(STDIN_FILENO, &in)) return 1;
    return S_ISCHR(in.st_mode) && stat("/dev/null", &null) == 0 && in.st_rdev == null.st_rdev;
}

//  Prints the last answer, for the command name, as one line.
static void s_print(cli_console_t *self, const char *name)
{
    const char *usage = cli_console_answer(self);
    flockfile(stdout);
    if (self->kind == CLI_ANSWER_OK)
        printf("ok %s%s%s\n", name, *self->text ? " " : "", self->text);
    else if (self->kind == CLI_ANSWER_ERROR)
        printf("error %s: %s\n", name, self->text);
    else if (self->kind == CLI_ANSWER_LINE)
        printf("%s\n", self->text);
    else if (usage)
        printf("error %s: usage: %s\n", name, usage);
    else
        printf("error %s: %s\n", name, self->wrong_args);
    fflush(stdout);
    funlockfile(stdout);
}

//  --------------------------------------------------------------------------
//  Dispatch

static const cli_command_t *s_find(const cli_command_t *commands, const char *name)
{
    for (const cli_command_t *command = commands; command->name; command++)
        if (strcmp(command->name, name) == 0) return command;
    return NULL;
}

//  Runs command (NULL: unknown) with its words and keeps the answer.
static cli_answer_t s_dispatch(cli_console_t *self, const cli_command_t *command, int argc,
                               char **argv)
{
    self->command = command;
    self->kind = CLI_ANSWER_OK;
    self->text[0] = 0;
    if (!command || argc - 1 < command->min_args || argc - 1 > command->max_args)
        self->kind = CLI_ANSWER_USAGE;
    else {
        errno = 0;
        if (command->run(self, self->self, argc, argv)) self->kind = CLI_ANSWER_USAGE;
    }
    return self->kind;
}

cli_answer_t cli_console_execute(cli_console_t *self, int argc, char **argv)
{
    return s_dispatch(self, argc > 0 ? s_find(self->commands, argv[0]) : NULL, argc, argv);
}

//  Splits p into at most max words; with rest, the last takes the rest of
//  the line. Returns the number of words, or max + 1 if there are more.
static int s_split(char *p, char **words, int max, int rest)
{
    int count = 0;
    while (1) {
        p += strspn(p, S_BLANKS);
        if (!*p) return count;
        if (count == max) return max + 1;
        words[count++] = p;
        if (rest && count == max) return count;
        p += strcspn(p, S_BLANKS);
        if (*p) *p++ = 0;
    }
}

//  Runs one line and prints its answer; a blank line is ignored.
static void s_execute_line(cli_console_t *self, char *line)
{
    char *words[CLI_CONSOLE_WORDS_MAX];
    char *p = line + strspn(line, S_BLANKS);
    if (!*p) return;
    words[0] = p;
    p += strcspn(p, S_BLANKS);
    if (*p) *p++ = 0;
    const cli_command_t *command = s_find(self->commands, words[0]);
    int rest = command && command->rest;
    int argc = 1 + s_split(p, words + 1, rest ? command->max_args : CLI_ARGS_ANY, rest);
    s_dispatch(self, command, argc, words); //  more words than a line holds: wrong arguments
    s_print(self, words[0]);
}

//  --------------------------------------------------------------------------
//  Input

//  Reads what stdin has after the input kept. Returns the bytes read, 0 at
//  its end, or -1 (errno says why).
static ssize_t s_read(cli_console_t *self)
{
    if (self->used == self->cap) {
        size_t cap = self->cap ? 2 * self->cap : 4096;
        if (self->line_max && cap > self->line_max + 1) cap = self->line_max + 1;
        char *buffer = (char *)realloc(self->buffer, cap);
        if (!buffer) {
            errno = ENOMEM;
            return -1;
        }
        self->buffer = buffer;
        self->cap = cap;
    }
    ssize_t got = read(STDIN_FILENO, self->buffer + self->used, self->cap - self->used);
    if (got > 0) self->used += (size_t)got;
    return got;
}

//  Runs the complete lines kept; keeps the start of the next one, or drops
//  it once it is longer than line_max.
static void s_execute_lines(cli_console_t *self)
{
    char *start = self->buffer, *eol;
    size_t left = self->used;
    while (!self->stopped && (eol = (char *)memchr(start, '\n', left)) != NULL) {
        *eol = 0;
        if (eol > start && eol[-1] == '\r') eol[-1] = 0;
        if (self->skipping)
            self->skipping = 0;
        else
            s_execute_line(self, start);
        left -= (size_t)(eol + 1 - start);
        start = eol + 1;
    }
    memmove(self->buffer, start, left);
    self->used = left;
    if (self->line_max && self->used > self->line_max) {
        if (!self->skipping) {
            flockfile(stdout);
            printf("error line longer than %zu bytes\n", self->line_max);
            fflush(stdout);
            funlockfile(stdout);
        }
        self->used = 0;
        self->skipping = 1;
    }
}

//  At the end of input: runs the last line if it had no newline.
static void s_execute_last_line(cli_console_t *self)
{
    //  s_read made room before the read that found the end, unless it could not.
    if (self->stopped || self->skipping || self->used == 0 || self->used == self->cap) return;
    self->buffer[self->used] = 0;
    if (self->buffer[self->used - 1] == '\r') self->buffer[self->used - 1] = 0;
    self->used = 0;
    s_execute_line(self, self->buffer);
}

void cli_console_run(cli_console_t *self)
{
    int stdin_open = 1;
    while (!self->stopped) {
        int ready = self->wait ? self->wait(self->self, stdin_open) : 1;
        if (ready < 0) break;
        if (ready == 0 || !stdin_open) continue;
        ssize_t got = s_read(self);
        if (got < 0 && errno == EINTR) continue;
        if (got > 0) {
            s_execute_lines(self);
            continue;
        }
        s_execute_last_line(self); //  stdin ended (or failed)
        if (!self->keep_serving || !self->wait) break;
        stdin_open = 0;
    }
}

int cli_console_run_once(cli_console_t *self, const char *prog, void (*usage)(FILE *out), int argc,
                         char **argv)
{
    cli_answer_t kind = cli_console_execute(self, argc, argv);
    const char *text = cli_console_answer(self);
    if (kind == CLI_ANSWER_OK || kind == CLI_ANSWER_LINE) {
        if (text && *text) printf("%s\n", text);
        return 0;
    }
    if (kind == CLI_ANSWER_ERROR) {
        fprintf(stderr, "%s: %s: %s\n", prog, argv[0], text);
        return 1;
    }
    fprintf(stderr, "%s: %s: unknown command or wrong arguments\n\n", prog, argv[0]);
    usage(stderr);
    return 64; //  CLI_USAGE
}
