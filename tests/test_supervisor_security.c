/*  Supervisor: the admin API under attack by a local user without the key.
    Slow clients (a slow-loris of many sockets that trickle bytes) do not
    keep `zcluster health` from answering; a refused URL cannot forge a log
    line or write a terminal escape; a flood of refusals writes a bounded
    number of lines; the key is not on any command line; HTTPS works with
    the CA (curl and zcluster --cacert), is refused without it, and a wrong
    key is still 401; plain HTTP off loopback is refused. */
#include "supkit.h"
#include "zc_admin_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>

static char s_out[65536];
static char s_tmp[64]; //  this test's files: the log, the certificate

//  --------------------------------------------------------------------------
//  Helpers

//  How many lines of text contain part.
static int s_count_lines(const char *text, const char *part)
{
    int n = 0;
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *hit = strstr(line, part);
        n += hit && (size_t)(hit - line) < len;
        line = end ? end + 1 : NULL;
    }
    return n;
}

//  A connected TCP socket to 127.0.0.1:port, or -1.
static int s_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) return fd;
    if (fd >= 0) close(fd);
    return -1;
}

//  Sends raw bytes as one request on a new connection; returns the HTTP
//  status of the answer, or -1.
static int s_raw_request(int port, const char *request)
{
    int fd = s_connect(port);
    if (fd < 0) return -1;
    char reply[4096] = "";
    size_t used = 0;
    ssize_t n;
    if (send(fd, request, strlen(request), MSG_NOSIGNAL) == (ssize_t)strlen(request))
        while (used < sizeof reply - 1 &&
               (n = recv(fd, reply + used, sizeof reply - 1 - used, 0)) > 0)
            used += (size_t)n;
    close(fd);
    int status = -1;
    return sscanf(reply, "HTTP/%*d.%*d %d", &status) == 1 ? status : -1;
}

//  Runs a shell command line to its end; returns its exit code, its
//  output in s_out.
static int s_shell(const char *command)
{
    return zs_shell(s_out, sizeof s_out, command);
}

//  The escaping rules, unit by unit.
static void s_escaping(void)
{
    zt_section("what a refusal logs: escaped, key masked, cut");
    char out[ADMIN_LOG_TARGET_MAX * 4 + 8], longer[1000];
    ZT_CHECK(!strcmp(admin_log_escape(out, sizeof out, "a\nb\x1b[2J\\\x7f\xc3\xa9"),
                     "a\\x0ab\\x1b[2J\\x5c\\x7f\\xc3\\xa9"));
    ZT_CHECK(!strcmp(admin_log_target(out, sizeof out, "/w?key=s3cret&a=1&key=x&monkey=y"),
                     "/w?key=***&a=1&key=***&monkey=y"));
    ZT_CHECK(!strcmp(admin_log_target(out, sizeof out, "/key=x"), "/key=x"));
    memset(longer, 0x01, sizeof longer - 1);
    longer[sizeof longer - 1] = 0;
    admin_log_target(out, sizeof out, longer);
    ZT_EQ(strlen(out), ADMIN_LOG_TARGET_MAX * 4 + 3);
    ZT_CHECK(!strcmp(out + strlen(out) - 3, "..."));
    char tiny[16];
    ZT_CHECK(strlen(admin_log_escape(tiny, sizeof tiny, "\x01\x01\x01\x01")) < sizeof tiny);
}

//  --------------------------------------------------------------------------
//  Slow clients

typedef struct {
    int port;
    int count; //  sockets kept open
    volatile int stop;
    int opened;   //  connections made
    int reopened; //  connections the master closed (the attacker opens another)
    int64_t sent; //  bytes trickled
} s_loris_t;

//  Keeps count connections open, each sending a request line, then one
//  header byte per round (every 100 ms): never idle, never complete. A
//  connection the master closes is replaced at once.
static void *s_loris_run(void *arg)
{
    s_loris_t *loris = (s_loris_t *)arg;
    int fds[256];
    for (int i = 0; i < loris->count; i++)
        fds[i] = -1;
    while (!loris->stop) {
        for (int i = 0; i < loris->count && !loris->stop; i++) {
            if (fds[i] < 0) {
                fds[i] = s_connect(loris->port);
                loris->opened += fds[i] >= 0;
                if (fds[i] >= 0)
                    send(fds[i], "GET /health HTTP/1.1\r\nHost: x\r\nX-A: ", 36, MSG_NOSIGNAL);
                continue;
            }
            char drain[256];
            ssize_t got = recv(fds[i], drain, sizeof drain, MSG_DONTWAIT);
            if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK) ||
                send(fds[i], "a", 1, MSG_NOSIGNAL) != 1) {
                close(fds[i]);
                fds[i] = -1;
                loris->reopened++;
            } else
                loris->sent++;
        }
        zs_sleep_ms(100);
    }
    for (int i = 0; i < loris->count; i++)
        if (fds[i] >= 0) close(fds[i]);
    return NULL;
}

//  200 trickling sockets (the old limit was 64): `zcluster health` still
//  answers, again and again, while they run.
static void s_slow_loris(zs_master_t *sup, const char *log_path)
{
    zt_section("slow-loris: 200 trickling sockets, and zcluster health still answers");
    s_loris_t loris = {.port = sup->port, .count = 200};
    pthread_t thread;
    ZT_EQ(pthread_create(&thread, NULL, s_loris_run, &loris), 0);
    //  Until every socket was opened (more than the old limit of 64 slots)
    //  and some trickle.
    int64_t deadline = zt_now_ms() + 20000;
    while ((loris.opened < loris.count || loris.sent < 10) && zt_now_ms() < deadline)
        zs_sleep_ms(50);
    ZT_CHECK(loris.opened >= loris.count && loris.sent >= 10);
    int answered = 0;
    for (int i = 0; i < 5; i++) {
        int rc = zs_cli(s_out, sizeof s_out, "health", "--runtime-dir", sup->dir, "--key-file",
                        sup->key_file, NULL);
        answered += rc == 0;
        if (rc != 0) fprintf(stderr, "  zcluster health: %d\n%s", rc, s_out);
    }
    ZT_EQ(answered, 5);
    //  The master closes slow clients (each a whole deadline late at most).
    deadline = zt_now_ms() + 30000;
    while (loris.reopened < 200 && zt_now_ms() < deadline)
        zs_sleep_ms(100);
    printf("  %d slow connections closed by the master, %lld bytes trickled\n", loris.reopened,
           (long long)loris.sent);
    ZT_CHECK(loris.reopened >= 200);
    loris.stop = 1;
    pthread_join(thread, NULL);
    ZT_CHECK(zs_wait_ready(sup, 1, 5000));
    //  Hundreds of closures, a bounded number of lines about them.
    char *log = zs_slurp(log_path);
    int lines =
        s_count_lines(log, "closed a connection") + s_count_lines(log, "more request(s) closed");
    printf("  %d log line(s) about %d closures\n", lines, loris.reopened);
    ZT_CHECK(lines >= 1 && lines < 20);
    free(log);
}

//  One connection that sends a byte every 100 ms is closed although it is
//  never idle: the deadline is for the whole request, not for silence.
static void s_deadline(zs_master_t *sup)
{
    zt_section("a client that trickles forever is closed (deadline, not inactivity)");
    int fd = s_connect(sup->port);
    ZT_CHECK(fd >= 0);
    if (fd < 0) return;
    ZT_CHECK(send(fd, "GET /health HTTP/1.1\r\nX-A: ", 27, MSG_NOSIGNAL) == 27);
    int64_t start = zt_now_ms();
    int closed = 0, sent = 0;
    while (!closed && zt_now_ms() - start < 30000) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 100) == 1) {
            char buf[64];
            closed = recv(fd, buf, sizeof buf, 0) <= 0;
        } else if (send(fd, "a", 1, MSG_NOSIGNAL) == 1)
            sent++;
        else
            closed = 1;
    }
    close(fd);
    printf("  closed after %lld ms and %d bytes\n", (long long)(zt_now_ms() - start), sent);
    ZT_CHECK(closed);
    ZT_CHECK(sent > 10); //  it was active all along
}

//  --------------------------------------------------------------------------
//  The log

//  Percent-encoded and raw control bytes in a refused URL: logged raw,
//  escaped; no forged line, no ESC byte in the log.
static void s_log_injection(zs_master_t *sup, const char *log_path)
{
    zt_section("log injection: %0a and %1b in a refused URL forge nothing");
    ZT_EQ(s_raw_request(sup->port, "GET /x%0aforged%0d%1b[2J\x1b[31mred?key=guess&a=%0a "
                                   "HTTP/1.0\r\n\r\n"),
          401);
    char *log = zs_slurp(log_path);
    ZT_CHECK(strstr(log, "GET /x%0aforged%0d%1b[2J\\x1b[31mred?key=***&a=%0a refused (401)"));
    ZT_CHECK(strchr(log, 0x1b) == NULL);
    ZT_CHECK(strchr(log, '\r') == NULL);
    ZT_CHECK(strstr(log, "\nforged") == NULL);
    ZT_CHECK(strstr(log, "guess") == NULL);
    free(log);
}

//  2,000 refused requests write a bounded number of lines; the counts in
//  the summaries add up.
static void s_refusal_flood(zs_master_t *sup, const char *log_path)
{
    zt_section("2,000 refused requests write a bounded number of lines");
    char *before = zs_slurp(log_path);
    size_t offset = strlen(before);
    free(before);
    int64_t start = zt_now_ms();
    int refused = 0;
    for (int i = 0; i < 2000; i++)
        refused +=
            s_raw_request(sup->port, "GET /workers HTTP/1.0\r\nX-Zcluster-Key: no\r\n\r\n") == 401;
    int64_t elapsed = zt_now_ms() - start;
    ZT_EQ(refused, 2000);
    //  Wait for the summary of the last interval (they are 10 s long).
    long counted = 0;
    int lines = 0;
    int64_t deadline = zt_now_ms() + 30000;
    while (zt_now_ms() < deadline) {
        char *log = zs_slurp(log_path);
        const char *mine = log + offset;
        lines = s_count_lines(mine, "refused");
        counted = s_count_lines(mine, "GET /workers refused (401)");
        for (const char *p = strstr(mine, "] "); p; p = strstr(p + 1, "] ")) {
            long n = 0;
            if (sscanf(p, "] %ld more request(s) refused", &n) == 1) counted += n;
        }
        free(log);
        if (counted >= 2000) break;
        zs_sleep_ms(200);
    }
    printf("  2000 refusals in %lld ms: %d log line(s), counting %ld\n", (long long)elapsed, lines,
           counted);
    ZT_EQ(counted, 2000);
    ZT_CHECK(lines >= 1 && lines <= 4 + 2 * (int)(elapsed / 10000));
}

//  --------------------------------------------------------------------------
//  HTTPS

//  Makes a self-signed certificate for 127.0.0.1 in DIR/cert.pem and
//  DIR/key.pem. Returns 0 or -1.
static int s_make_certificate(const char *dir)
{
    char command[1024];
    snprintf(command, sizeof command,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s/key.pem -out %s/cert.pem -days 2 -subj /CN=localhost "
             "-addext subjectAltName=IP:127.0.0.1,DNS:localhost 2>&1 && chmod 600 %s/key.pem",
             dir, dir, dir);
    int rc = s_shell(command);
    if (rc) fprintf(stderr, "  openssl: %s", s_out);
    return rc ? -1 : 0;
}

static void s_https(void)
{
    zt_section("HTTPS: works with the CA, refused without it; a wrong key is still 401");
    ZT_EQ(s_make_certificate(s_tmp), 0);
    char cert[128], key[128], header[128], url[128], command[1024];
    snprintf(cert, sizeof cert, "%s/cert.pem", s_tmp);
    snprintf(key, sizeof key, "%s/key.pem", s_tmp);
    const char *opts[] = {"-n", "1", "--admin-cert", cert, "--admin-cert-key", key, NULL};
    const char *worker[] = {NULL};
    zs_master_t *sup = zs_start("https", opts, worker);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    snprintf(url, sizeof url, "https://127.0.0.1:%d/health", sup->port);
    //  curl reads the key header from a file (-H @FILE), off its command line.
    snprintf(header, sizeof header, "%s.header", s_tmp);
    FILE *f = fopen(header, "w");
    if (f) {
        fprintf(f, "X-Zcluster-Key: %s\n", sup->key);
        fclose(f);
    }
    snprintf(command, sizeof command,
             "curl -s -o /dev/null -w '%%{http_code}\\n' --cacert %s -H @%s %s", cert, header, url);
    ZT_EQ(s_shell(command), 0);
    ZT_CHECK(strcmp(s_out, "200\n") == 0);
    snprintf(command, sizeof command, "curl -s -o /dev/null -w '%%{http_code}\\n' -H @%s %s",
             header, url);
    ZT_EQ(s_shell(command), 60); //  peer certificate cannot be authenticated
    snprintf(command, sizeof command,
             "curl -s -o /dev/null -w '%%{http_code}\\n' --cacert %s -H 'X-Zcluster-Key: no' %s",
             cert, url);
    ZT_EQ(s_shell(command), 0);
    ZT_CHECK(strcmp(s_out, "401\n") == 0);
    snprintf(command, sizeof command, "curl -s -o /dev/null http://127.0.0.1:%d/health", sup->port);
    ZT_CHECK(s_shell(command) != 0); //  no plain HTTP on the HTTPS port
    //  zcluster finds the https URL in admin.json (health is ok once the
    //  worker is ready; the kit's plain HTTP helper cannot ask).
    int healthy = 0;
    for (int64_t until = zt_now_ms() + 20000; !healthy && zt_now_ms() < until;)
        healthy = zs_cli(s_out, sizeof s_out, "health", "--runtime-dir", sup->dir, "--key-file",
                         sup->key_file, "--cacert", cert, NULL) == 0;
    ZT_CHECK(healthy);
    //  100 connections that never start their TLS handshake: still room.
    int silent[100];
    for (int i = 0; i < 100; i++)
        silent[i] = s_connect(sup->port);
    ZT_EQ(zs_cli(s_out, sizeof s_out, "health", "--runtime-dir", sup->dir, "--key-file",
                 sup->key_file, "--cacert", cert, NULL),
          0);
    for (int i = 0; i < 100; i++)
        if (silent[i] >= 0) close(silent[i]);
    ZT_CHECK(strstr(s_out, "cluster https: ok") != NULL);
    snprintf(command, sizeof command, "\"$ZC_CLI\" health --runtime-dir %s --key-file %s 2>&1",
             sup->dir, sup->key_file);
    ZT_EQ(s_shell(command), 2);
    ZT_CHECK(strstr(s_out, "cannot trust the master at https://127.0.0.1:") != NULL);
    snprintf(command, sizeof command,
             "ZC_ADMIN_KEY=wrong \"$ZC_CLI\" health --runtime-dir %s --cacert %s 2>&1", sup->dir,
             cert);
    ZT_EQ(s_shell(command), 2);
    ZT_CHECK(strstr(s_out, "refused the access key") != NULL);
    ZT_EQ(zs_cli(s_out, sizeof s_out, "shutdown", "all", "--runtime-dir", sup->dir, "--key-file",
                 sup->key_file, "--cacert", cert, NULL),
          0);
    ZT_EQ(zs_stop(sup, 0, 20000), 0);
    zs_destroy(&sup);
    unlink(header);
}

//  A non-loopback address without HTTPS is refused unless forced.
static void s_plaintext_refused(void)
{
    zt_section("plain HTTP off loopback: refused unless --admin-allow-plaintext");
    char command[512];
    snprintf(command, sizeof command,
             "\"$ZC_CLI\" start --admin-address 0.0.0.0 --runtime-dir %s/rt -- true 2>&1", s_tmp);
    ZT_EQ(s_shell(command), 1);
    ZT_CHECK(strstr(s_out, "0.0.0.0 is not a loopback address") != NULL);
    snprintf(command, sizeof command,
             "\"$ZC_CLI\" start --admin-address not-an-ip --runtime-dir %s/rt -- true 2>&1", s_tmp);
    ZT_EQ(s_shell(command), 1);
    ZT_CHECK(strstr(s_out, "'not-an-ip' is not an IP address") != NULL);
    snprintf(command, sizeof command,
             "\"$ZC_CLI\" start --admin-cert %s/cert.pem --admin-cert-key /nonexistent "
             "--runtime-dir %s/rt -- true 2>&1",
             s_tmp, s_tmp);
    ZT_EQ(s_shell(command), 1);
    ZT_CHECK(strstr(s_out, "cannot read the HTTPS private key from /nonexistent") != NULL);
    snprintf(command, sizeof command,
             "chmod 640 %s/key.pem && \"$ZC_CLI\" start --admin-cert %s/cert.pem --admin-cert-key "
             "%s/key.pem --runtime-dir %s/rt -- true 2>&1",
             s_tmp, s_tmp, s_tmp, s_tmp);
    ZT_EQ(s_shell(command), 1);
    ZT_CHECK(strstr(s_out, "key.pem is readable by group or others (chmod 600 it)") != NULL);

    //  Forced: it listens, says what it costs, and the CLI finds it.
    char log_path[128];
    snprintf(log_path, sizeof log_path, "%s/forced.log", s_tmp);
    const char *opts[] = {"-n", "1", "--admin-address", "0.0.0.0", "--admin-allow-plaintext", NULL};
    const char *worker[] = {NULL};
    zs_master_t *sup = zs_start_logged("forced", opts, worker, log_path);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_CHECK(zs_wait_ready(sup, 1, 20000));
    ZT_EQ(zs_cli(s_out, sizeof s_out, "health", "--runtime-dir", sup->dir, "--key-file",
                 sup->key_file, NULL),
          0);
    ZT_EQ(zs_stop(sup, SIGTERM, 20000), 0);
    zs_destroy(&sup);
    char *log = zs_slurp(log_path);
    ZT_CHECK(strstr(log, "plain HTTP on 0.0.0.0 port ") &&
             strstr(log, "the access key crosses the network in clear"));
    free(log);
    unlink(log_path);
}

int main(int argc, char **argv)
{
    zs_worker_main(argc, argv);
    s_escaping();
    snprintf(s_tmp, sizeof s_tmp, "/tmp/zc-test-security-XXXXXX");
    ZT_CHECK(mkdtemp(s_tmp) != NULL);
    char log_path[128];
    snprintf(log_path, sizeof log_path, "%s/master.log", s_tmp);
    const char *opts[] = {"-n", "1", NULL};
    const char *worker[] = {NULL};
    zs_master_t *sup = zs_start_logged("guard", opts, worker, log_path);
    ZT_CHECK(sup != NULL);
    if (!sup) return zt_done();
    ZT_CHECK(zs_wait_ready(sup, 1, 20000));

    zt_section("the access key is on no command line");
    ZT_CHECK(zs_ps_clean(sup->key));

    s_log_injection(sup, log_path);
    s_refusal_flood(sup, log_path);
    s_slow_loris(sup, log_path);
    s_deadline(sup);
    ZT_EQ(zs_stop(sup, SIGTERM, 20000), 0);
    zs_destroy(&sup);
    char *log = zs_slurp(log_path);
    ZT_CHECK(strstr(log, "master stopped") != NULL);
    ZT_CHECK(strstr(log, "key-guard") == NULL); //  the key is in no log line
    free(log);
    unlink(log_path);

    s_https();
    s_plaintext_refused();
    char path[128];
    const char *files[] = {"cert.pem", "key.pem"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", s_tmp, files[i]);
        unlink(path);
    }
    rmdir(s_tmp);
    return zt_done();
}
