/*  The CLI's values and its line console: cli_args (numbers, durations,
    sizes, the cluster options) and cli_console (the one splitting rule,
    dispatch, answers) unit by unit, then through the zcluster binary: a
    value that is not a number or a duration is refused with a message and
    exit code 64 (CLI_USAGE), by every command that takes one.

    CMake builds this test with src/cli/cli_args.c and cli_console.c.
*/
#include "testkit.h"
#include "cli_args.h"
#include "cli_console.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

//  --------------------------------------------------------------------------
//  cli_args

static void s_test_numbers(void)
{
    zt_section("numbers");
    int64_t v = 42;
    ZT_EQ(cli_args_number("5", 0, 10, &v), 0);
    ZT_EQ(v, 5);
    ZT_EQ(cli_args_number("-3", -5, 5, &v), 0);
    ZT_EQ(v, -3);
    ZT_EQ(cli_args_number("+7", 0, 10, &v), 0);
    ZT_EQ(v, 7);
    ZT_EQ(cli_args_number("9223372036854775807", 0, INT64_MAX, &v), 0);
    ZT_EQ(v, INT64_MAX);
    v = 42;
    const char *bad[] = {"",  "abc",  "5x",  " 5",  "5 ",  "-",
                         "+", "0x10", "1e3", "1.5", "--1", "99999999999999999999",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        int rc = cli_args_number(bad[i], INT64_MIN, INT64_MAX, &v);
        if (rc != -1) printf("  accepted '%s'\n", bad[i]);
        ZT_EQ(rc, -1);
    }
    ZT_EQ(cli_args_number(NULL, 0, 10, &v), -1);
    ZT_EQ(cli_args_number("11", 0, 10, &v), -1); //  out of range
    ZT_EQ(cli_args_number("-1", 0, 10, &v), -1);
    ZT_EQ(v, 42); //  left alone on failure
}

static void s_test_durations(void)
{
    zt_section("durations");
    struct {
        const char *text;
        int64_t ms;
    } good[] = {{"250", 250},  {"250ms", 250}, {"2s", 2000}, {"1.5s", 1500},
                {"1m", 60000}, {"0", 0},       {".5s", 500}, {"0.9", 0}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t ms = -1;
        ZT_EQ(cli_args_duration(good[i].text, 1000000, &ms), 0);
        ZT_EQ(ms, good[i].ms);
    }
    const char *bad[] = {"",    "5x",  "ms",   "-1", ".",   "1..2", "1e3",
                         "inf", "nan", "0x10", " 5", "5 s", "2h",   NULL};
    int64_t ms = 7;
    for (int i = 0; bad[i]; i++) {
        int rc = cli_args_duration(bad[i], 1000000, &ms);
        if (rc != -1) printf("  accepted '%s'\n", bad[i]);
        ZT_EQ(rc, -1);
    }
    ZT_EQ(cli_args_duration("1001s", 1000000, &ms), -1); //  over the maximum
    ZT_EQ(cli_args_duration("1000s", 1000000, &ms), 0);
    ZT_EQ(ms, 1000000);
}

static void s_test_sizes(void)
{
    zt_section("sizes");
    int64_t bytes = 0;
    ZT_EQ(cli_args_size("64", 1, INT64_MAX, &bytes), 0);
    ZT_EQ(bytes, 64);
    ZT_EQ(cli_args_size("4k", 1, INT64_MAX, &bytes), 0);
    ZT_EQ(bytes, 4096);
    ZT_EQ(cli_args_size("4K", 1, INT64_MAX, &bytes), 0);
    ZT_EQ(bytes, 4096);
    ZT_EQ(cli_args_size("1M", 1, INT64_MAX, &bytes), 0);
    ZT_EQ(bytes, 1024 * 1024);
    ZT_EQ(cli_args_size("2G", 1, INT64_MAX, &bytes), 0);
    ZT_EQ(bytes, 2LL << 30);
    const char *bad[] = {"", "k", "-1", "1.5k", "12q", "1MB", " 1", "99999999999999999999", NULL};
    for (int i = 0; bad[i]; i++)
        ZT_EQ(cli_args_size(bad[i], 0, INT64_MAX, &bytes), -1);
    ZT_EQ(cli_args_size("2M", 1, 1024 * 1024, &bytes), -1); //  out of range
    ZT_EQ(cli_args_size("0", 1, 10, &bytes), -1);
    ZT_EQ(cli_args_size("9000000000G", 1, INT64_MAX, &bytes), -1); //  would overflow
}

static void s_test_cluster_options(void)
{
    zt_section("--redis, --cluster, --id");
    cli_cluster_t where = {0};
    ZT_EQ(cli_cluster_option(&where, CLI_OPT_CLUSTER, "c1", NULL), 1);
    ZT_EQ(cli_cluster_option(&where, 'r', "unix:///r.sock", "rci"), 1);
    ZT_EQ(cli_cluster_option(&where, 'i', "n1", "  i"), 1);
    ZT_EQ(cli_cluster_option(&where, 'r', "x", "  i"), 0); //  -r is another option there
    ZT_EQ(cli_cluster_option(&where, 'q', "x", "rci"), 0);
    ZT_EQ(cli_cluster_option(&where, 'c', "x", "r"), 0); //  a short list: no -c
    ZT_CHECK(where.cluster && strcmp(where.cluster, "c1") == 0);
    ZT_CHECK(where.redis && strcmp(where.redis, "unix:///r.sock") == 0);
    ZT_CHECK(where.id && strcmp(where.id, "n1") == 0);
    //  --keys travels by path in $ZC_KEYS, the default of every node.
    unsetenv("ZC_KEYS");
    ZT_EQ(cli_cluster_option(&where, CLI_OPT_KEYS, "/k/cluster.keys", NULL), 1);
    ZT_CHECK(getenv("ZC_KEYS") && strcmp(getenv("ZC_KEYS"), "/k/cluster.keys") == 0);
    unsetenv("ZC_KEYS");

    setenv("ZC_REDIS_URL", "unix:///env.sock", 1);
    cli_cluster_t none = {0};
    ZT_CHECK(strcmp(cli_cluster_redis(&none), "unix:///env.sock") == 0);
    ZT_CHECK(strcmp(cli_cluster_redis(&where), "unix:///r.sock") == 0);
    cli_cluster_t empty = {"", NULL, NULL, NULL}; //  --redis "": no Redis
    ZT_CHECK(cli_cluster_redis(&empty) == NULL);
    unsetenv("ZC_REDIS_URL");
    ZT_CHECK(cli_cluster_redis(&none) == NULL);
    ZT_CHECK(cli_cluster_need_redis(&none, "test") == NULL);
}

//  --------------------------------------------------------------------------
//  cli_console

//  What the test commands saw.
typedef struct {
    int calls;
    int argc;
    char argv[8][64];
} s_seen_t;

static int s_cmd_echo(cli_console_t *console, void *self, int argc, char **argv)
{
    s_seen_t *seen = (s_seen_t *)self;
    seen->calls++;
    seen->argc = argc;
    for (int i = 0; i < argc && i < 8; i++)
        snprintf(seen->argv[i], sizeof seen->argv[i], "%s", argv[i]);
    cli_console_ok(console, "%d", argc - 1);
    return 0;
}

static int s_cmd_fail(cli_console_t *console, void *self, int argc, char **argv)
{
    if (strcmp(argv[1], "args") == 0) return -1;
    if (strcmp(argv[1], "line") == 0)
        cli_console_line(console, "fail %s", argv[1]);
    else
        cli_console_error(console, "failed on '%s'", argv[1]);
    return 0;
}

static int s_cmd_silent(cli_console_t *console, void *self, int argc, char **argv)
{
    return 0;
}

static const cli_command_t s_commands[] = {
    {"echo", 0, CLI_ARGS_ANY, s_cmd_echo, NULL, 0}, {"say", 1, 2, s_cmd_echo, NULL, CLI_REST},
    {"fail", 1, 1, s_cmd_fail, "fail WHAT", 0},     {"silent", 0, 0, s_cmd_silent, NULL, 0},
    {"quit", 0, 0, cli_console_quit, NULL, 0},      {NULL, 0, 0, NULL, NULL, 0},
};

static void s_test_execute(void)
{
    zt_section("console: dispatch and answers");
    s_seen_t seen = {0};
    cli_console_t *console = cli_console_new(s_commands, &seen);
    ZT_CHECK(console != NULL);
    char *echo[] = {"echo", "a", "b"};
    ZT_EQ(cli_console_execute(console, 3, echo), CLI_ANSWER_OK);
    ZT_CHECK(strcmp(cli_console_answer(console), "2") == 0);
    char *silent[] = {"silent"};
    ZT_EQ(cli_console_execute(console, 1, silent), CLI_ANSWER_OK);
    ZT_CHECK(strcmp(cli_console_answer(console), "") == 0);
    char *error[] = {"fail", "x"};
    ZT_EQ(cli_console_execute(console, 2, error), CLI_ANSWER_ERROR);
    ZT_CHECK(strcmp(cli_console_answer(console), "failed on 'x'") == 0);
    char *line[] = {"fail", "line"};
    ZT_EQ(cli_console_execute(console, 2, line), CLI_ANSWER_LINE);
    ZT_CHECK(strcmp(cli_console_answer(console), "fail line") == 0);
    char *args[] = {"fail", "args"}, *few[] = {"fail"}, *many[] = {"silent", "x"};
    ZT_EQ(cli_console_execute(console, 2, args), CLI_ANSWER_USAGE);
    ZT_CHECK(strcmp(cli_console_answer(console), "fail WHAT") == 0);
    ZT_EQ(cli_console_execute(console, 1, few), CLI_ANSWER_USAGE);
    ZT_EQ(cli_console_execute(console, 2, many), CLI_ANSWER_USAGE);
    ZT_CHECK(cli_console_answer(console) == NULL); //  no usage: the console's text
    char *unknown[] = {"frob"};
    ZT_EQ(cli_console_execute(console, 1, unknown), CLI_ANSWER_USAGE);
    cli_console_destroy(&console);
    cli_console_destroy(&console);
    ZT_CHECK(console == NULL);
}

//  Runs a console on input (as stdin), returning what it printed (the
//  caller frees).
static char *s_run(const char *input, size_t line_max, s_seen_t *seen)
{
    char in_path[] = "/tmp/zc-test-cli-in-XXXXXX", out_path[] = "/tmp/zc-test-cli-out-XXXXXX";
    int in = mkstemp(in_path), out = mkstemp(out_path);
    if (in < 0 || out < 0 || write(in, input, strlen(input)) != (ssize_t)strlen(input)) return NULL;
    lseek(in, 0, SEEK_SET);
    fflush(stdout);
    int saved_in = dup(STDIN_FILENO), saved_out = dup(STDOUT_FILENO);
    dup2(in, STDIN_FILENO);
    dup2(out, STDOUT_FILENO);
    cli_console_t *console = cli_console_new(s_commands, seen);
    cli_console_set_line_max(console, line_max);
    cli_console_run(console);
    cli_console_destroy(&console);
    fflush(stdout);
    dup2(saved_in, STDIN_FILENO);
    dup2(saved_out, STDOUT_FILENO);
    close(saved_in);
    close(saved_out);
    off_t size = lseek(out, 0, SEEK_END);
    char *text = (char *)calloc(1, (size_t)size + 1);
    if (text && pread(out, text, (size_t)size, 0) != size) text[0] = 0;
    close(in);
    close(out);
    unlink(in_path);
    unlink(out_path);
    return text;
}

//  Checks that input, run, prints expected.
static void s_check_run(const char *input, size_t line_max, const char *expected, s_seen_t *seen)
{
    char *output = s_run(input, line_max, seen);
    ZT_CHECK(output && strcmp(output, expected) == 0);
    if (output && strcmp(output, expected) != 0)
        printf("  input:    '%s'\n  printed:  '%s'\n  expected: '%s'\n", input, output, expected);
    free(output);
}

static void s_test_lines(void)
{
    zt_section("console: the splitting rule");
    s_seen_t seen = {0};
    //  Runs of spaces and tabs separate words; blank lines are ignored.
    s_check_run("  echo a   b\tc  \n\n \t \n", 0, "ok echo 3\n", &seen);
    ZT_EQ(seen.argc, 4);
    ZT_CHECK(strcmp(seen.argv[1], "a") == 0 && strcmp(seen.argv[3], "c") == 0);
    //  A rest command's last argument is the rest of the line, as it is.
    s_check_run("say hello  big\tworld \r\n", 0, "ok say 2\n", &seen);
    ZT_CHECK(strcmp(seen.argv[1], "hello") == 0 && strcmp(seen.argv[2], "big\tworld ") == 0);
    s_check_run("say  one\n", 0, "ok say 1\n", &seen);
    //  Wrong arguments and unknown commands, in the console's words.
    s_check_run("fail\nfail args\nfrob x\nsilent\nfail x\n", 0,
                "error fail: usage: fail WHAT\nerror fail: usage: fail WHAT\n"
                "error frob: unknown command or wrong arguments\nok silent\n"
                "error fail: failed on 'x'\n",
                &seen);
    //  More words than a line holds are wrong arguments.
    char line[200] = "echo";
    for (int i = 0; i < CLI_CONSOLE_WORDS_MAX; i++)
        strcat(line, " w");
    strcat(line, "\n");
    s_check_run(line, 0, "error echo: unknown command or wrong arguments\n", &seen);
    //  The last line needs no newline; quit stops before the next line.
    s_check_run("silent\nsilent", 0, "ok silent\nok silent\n", &seen);
    seen.calls = 0;
    s_check_run("quit\necho x\n", 0, "ok quit\n", &seen);
    ZT_EQ(seen.calls, 0);
    //  A line too long is dropped whole, its tail included.
    s_check_run("echo 123456789 123456789\nsilent\n", 10,
                "error line longer than 10 bytes\nok silent\n", &seen);
    s_check_run("echo 12345\nsilent\n", 10, "ok echo 1\nok silent\n", &seen);
}

//  --------------------------------------------------------------------------
//  Through the zcluster binary

//  Runs `zcluster ARGS` through sh with stderr on stdout; checks that it
//  says expected and exits with code.
static void s_check_cli(const char *args, const char *expected, int code)
{
    char command[512];
    snprintf(command, sizeof command, "exec \"$ZC_CLI\" %s 2>&1 </dev/null", args);
    char *argv[] = {"sh", "-c", command, NULL};
    zt_proc_t *p = zt_proc_start(argv, NULL);
    const char *line = p ? zt_proc_expect(p, expected, 10000) : NULL;
    if (!line) printf("  `zcluster %s` did not say '%s'\n", args, expected);
    ZT_CHECK(line != NULL);
    int status = p ? zt_proc_wait(p, 10000) : -1;
    ZT_CHECK(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == code);
    zt_proc_destroy(&p);
}

//  No secret on a command line: a --redis with a password is refused by
//  every command, before anything runs; --redis-file and --key-file take
//  only files that no one else may read.
static void s_check_secrets(void)
{
    zt_section("zcluster: no secret on the command line");
    const char *commands[] = {"start", "worker", "node", "cache", "bench"};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        char args[256], expected[256];
        snprintf(args, sizeof args, "%s --redis redis://:pw-x1@127.0.0.1:1 -- true", commands[i]);
        snprintf(expected, sizeof expected,
                 "zcluster %s: --redis holds a password, which `ps` shows to every user",
                 commands[i]);
        s_check_cli(args, expected, 64);
    }
    s_check_cli("start --key abc -- true", "zcluster start: --key KEY is gone", 64);
    s_check_cli("health --key abc --admin 1", "zcluster health: --key KEY is gone", 64);
    char path[] = "/tmp/zc-test-secret-XXXXXX";
    int fd = mkstemp(path);
    ZT_CHECK(fd >= 0 && write(fd, "redis://:pw@127.0.0.1:1\n", 24) == 24);
    close(fd);
    char args[256], expected[256];
    chmod(path, 0640);
    snprintf(args, sizeof args, "worker --redis-file %s", path);
    s_check_cli(args, "zcluster worker: --redis-file /tmp/zc-test-secret-", 64);
    snprintf(args, sizeof args, "health --key-file %s --admin 1", path);
    snprintf(expected, sizeof expected,
             "zcluster health: --key-file %s: readable by group or others (chmod 600 it)", path);
    s_check_cli(args, expected, 64);
    chmod(path, 0600);
    snprintf(args, sizeof args, "health --key-file %s --admin 1 --timeout 2s", path);
    s_check_cli(args, "zcluster health: no master answers on http://127.0.0.1:1", 2);
    unlink(path);
}

static void s_test_cli(void)
{
    zt_section("zcluster: bad values are refused (exit 64)");
    s_check_cli("start --max-restarts abc -- true",
                "zcluster start: --max-restarts must be 0..1000000", 64);
    s_check_cli("start --max-restarts 5x -- true",
                "zcluster start: --max-restarts must be 0..1000000", 64);
    s_check_cli("start --admin-port abc -- true", "zcluster start: --admin-port must be 0..65535",
                64);
    s_check_cli("start --workers 2x -- true", "zcluster start: --workers must be 1..1024", 64);
    s_check_cli("start --stop-timeout 5x -- true",
                "zcluster start: bad duration '5x' (e.g. 500ms, 2s, 1m)", 64);
    s_check_cli("start --group a:x:true", "zcluster start: --group a: COUNT must be 0..1024", 64);
    s_check_cli("node --max-msg-size abc", "zcluster node: --max-msg-size must be 1..1073741824",
                64);
    s_check_cli("node --lease-ttl 1s", "zcluster node: --lease-ttl must be at least 300 ms", 64);
    s_check_cli("start --heartbeat-interval 5 -- true",
                "zcluster start: --heartbeat-interval must be at least 10 ms", 64);
    s_check_cli("demo --bind 'a b'", "zcluster demo: --bind takes a host name or IP address", 64);
    s_check_cli("worker --lease 10x", "zcluster worker: --lease takes 300..3600000 ms", 64);
    s_check_cli("worker --threads -1", "zcluster worker: --threads takes 0..256", 64);
    s_check_cli("bench --count abc publish", "zcluster bench: --size 1..1048576, --count >= 1", 64);
    s_check_cli("bench --size 2M publish", "zcluster bench: --size 1..1048576, --count >= 1", 64);
    s_check_cli("demo --tasks abc", "zcluster demo: --workers must be 2..8", 64);
    s_check_cli("events --since abc --admin 1", "zcluster events: bad --since 'abc'", 64);
    s_check_cli("workers --timeout 5x --admin 1", "zcluster workers: bad --timeout '5x'", 64);
    s_check_cli("health --admin x:70000", "zcluster health: --admin takes [http[s]://][HOST:]PORT",
                64);
    s_check_cli("health --admin ftp://x:1",
                "zcluster health: --admin takes [http[s]://][HOST:]PORT", 64);
    s_check_cli("cache --redis unix:///nonexistent/r.sock save k v abc",
                "zcluster cache: save: unknown command or wrong arguments", 64);
    s_check_cli("node --bogus", "usage: zcluster node", 64);
    s_check_secrets();
    s_check_cli("node --help", "usage: zcluster node", 0);
}

int main(void)
{
    s_test_numbers();
    s_test_durations();
    s_test_sizes();
    s_test_cluster_options();
    s_test_execute();
    s_test_lines();
    s_test_cli();
    return zt_done();
}
