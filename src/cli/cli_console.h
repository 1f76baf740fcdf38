/*  cli_console — the line console of `zcluster node`, `worker` and `cache`.

    Those commands are driven by lines on stdin, by people and by the
    multi-process tests: each line is one command and gets exactly one
    answer line, `ok NAME ...` or `error NAME: ...`, so a driver can wait
    for it. The loop, the splitting and the dispatch are written here once;
    a console brings its table of commands.

    Splitting, the one rule: a line ends at "\n" or at the end of input (a
    "\r" before the "\n" is dropped); its words are separated by runs of
    spaces and tabs; a blank line is ignored. The first word names the
    command. A command marked rest takes the rest of the line as its last
    argument, from that argument's first character to the end of the line,
    spaces included (the text of a message). A line is at most
    CLI_CONSOLE_WORDS_MAX words, and at most the console's line_max bytes:
    a longer one is answered `error line longer than N bytes` and dropped.

    Dispatch: an unknown command, or one given a number of arguments
    outside its entry's min..max, is answered `error NAME: ` and the
    console's wrong-arguments text (`usage: USAGE` if the entry has a
    usage). Otherwise the handler runs (errno is 0 when it starts) and
    answers with cli_console_ok, cli_console_error or cli_console_line; if
    it answered nothing the answer is `ok NAME`. A handler returns 0, or -1
    for wrong arguments (answered as above, whatever it answered before).

    Waiting: without a wait hook the console blocks reading stdin. With one,
    the hook waits, so node and worker keep serving their sockets and see
    signals while no line comes. The end of stdin ends the console, unless
    it was told to keep serving: then it calls the hook, without stdin,
    until the hook says stop (a supervised node or worker has no driver:
    it serves until SIGTERM).

    Answers are written whole under the stdout lock and flushed, so lines
    other threads print (a worker's finished jobs) come between answers,
    never inside one.
*/
#ifndef ZC_CLI_CONSOLE_H_INCLUDED
#define ZC_CLI_CONSOLE_H_INCLUDED

#include <stddef.h>
#include <stdio.h>

#define CLI_CONSOLE_WORDS_MAX 32
//  An entry's max_args for "any number" (as many as a line holds).
#define CLI_ARGS_ANY (CLI_CONSOLE_WORDS_MAX - 1)
//  An entry's rest flag.
#define CLI_REST 1

typedef struct _cli_console_t cli_console_t;

//  A command: argv[0] is its name, argv[1..argc-1] its arguments; self is
//  the console's (cli_console_new). Returns 0, or -1 for wrong arguments.
typedef int(cli_command_fn)(cli_console_t *console, void *self, int argc, char **argv);

//  One entry of a console's table; the table ends with an entry whose name
//  is NULL.
typedef struct {
    const char *name;
    int min_args, max_args; //  arguments after the name
    cli_command_fn *run;
    const char *usage; //  for wrong arguments; NULL: the console's text
    int rest;          //  CLI_REST: the last argument is the rest of the line
} cli_command_t;

//  Waits for input: returns 1 when stdin has some (stdin_open is 1), 0 to
//  be called again, -1 to stop the console.
typedef int(cli_wait_fn)(void *self, int stdin_open);

//  The kind of an answer.
typedef enum {
    CLI_ANSWER_OK,    //  `ok NAME [TEXT]`
    CLI_ANSWER_ERROR, //  `error NAME: TEXT`
    CLI_ANSWER_LINE,  //  TEXT as it is
    CLI_ANSWER_USAGE  //  wrong arguments: `error NAME: WRONG-ARGUMENTS`
} cli_answer_t;

//  A console over the commands (not copied: a static table), handing self
//  to each. Returns NULL if out of memory.
cli_console_t *cli_console_new(const cli_command_t *commands, void *self);

//  Destroys the console; idempotent, sets *self_p to NULL.
void cli_console_destroy(cli_console_t **self_p);

//  The text after `error NAME: ` for wrong arguments (the string is not
//  copied). Default: "unknown command or wrong arguments".
void cli_console_set_wrong_args(cli_console_t *self, const char *text);

//  The longest line in bytes, without its newline; 0 (the default): any.
void cli_console_set_line_max(cli_console_t *self, size_t line_max);

//  Waits with wait instead of blocking on stdin; if keep_serving, the end
//  of stdin does not end the console (see above).
void cli_console_set_wait(cli_console_t *self, cli_wait_fn *wait, int keep_serving);

//  Reads, runs and answers lines from stdin until a command stops the
//  console, stdin ends or the wait hook says stop.
void cli_console_run(cli_console_t *self);

//  Runs one command given as words (argv[0] its name) and keeps its answer
//  without printing it: for a command given once on the command line.
//  Returns the answer's kind; its text is cli_console_answer's.
cli_answer_t cli_console_execute(cli_console_t *self, int argc, char **argv);

//  Runs one command given on the command line (cli_console_execute) and
//  prints its text on stdout; an error goes to stderr as "PROG: NAME: TEXT"
//  (exit 1), wrong arguments with usage(stderr) (exit CLI_USAGE, 64).
//  Returns the exit code.
int cli_console_run_once(cli_console_t *self, const char *prog, void (*usage)(FILE *out), int argc,
                         char **argv);

//  The text of the last answer: TEXT for ok, error and line ("" for a bare
//  ok); for wrong arguments the entry's usage, or NULL.
const char *cli_console_answer(cli_console_t *self);

//  A handler's answers. ok: `ok NAME` and, if format gives any text, a
//  space and the text. error: `error NAME: TEXT`. line: the text alone.
void cli_console_ok(cli_console_t *self, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
void cli_console_error(cli_console_t *self, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
void cli_console_line(cli_console_t *self, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

//  Stops the console after this command's answer: no more lines are read
//  or run.
void cli_console_stop(cli_console_t *self);

//  The command `quit`: stops the console, answering `ok quit`.
int cli_console_quit(cli_console_t *console, void *self, int argc, char **argv);

//  Returns 1 if no line can ever come on stdin: it is closed, or it is
//  /dev/null, as a master's workers have it.
int cli_console_stdin_null(void);

#endif
