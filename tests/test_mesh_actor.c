/*  test_mesh_actor — zc_actor: a destroyed actor leaves no socket behind, so
    zsys_shutdown may follow at once (CZMQ's zactor closes its thread's end
    of the pipe after zactor_destroy returned, and a shutdown in between
    left the process's context behind: the next zsys_init asserted).
*/
#include "testkit.h"
#include "zc_actor.h"

#include <czmq.h>
#include <string.h>
#include <unistd.h>

#define CYCLES 2000

//  Owns a socket of its own as well, closed before it returns.
static void s_serve(zsock_t *pipe, void *args)
{
    zsock_t *own = zsock_new(ZMQ_PAIR);
    zsock_signal(pipe, 0);
    while (1) {
        char *command = zstr_recv(pipe);
        int term = !command || strcmp(command, "$TERM") == 0;
        if (!term) zstr_send(pipe, command); //  echo
        zstr_free(&command);
        if (term) break;
    }
    usleep(500); //  slow to finish: a destroy that did not wait would return first
    zsock_destroy(&own);
    (*(int *)args)++;
}

//  Says it is ready, then ends without waiting for $TERM.
static void s_quit(zsock_t *pipe, void *args)
{
    zsock_signal(pipe, 0);
    (*(int *)args)++;
}

int main(void)
{
    zt_section("an actor answers on its pipe");
    int ran = 0;
    zc_actor_t *actor = zc_actor_new(s_serve, &ran);
    ZT_CHECK(actor != NULL);
    zstr_send(zc_actor_sock(actor), "ping");
    char *echo = zstr_recv(zc_actor_sock(actor));
    ZT_CHECK(echo && strcmp(echo, "ping") == 0);
    zstr_free(&echo);
    zc_actor_destroy(&actor);
    zc_actor_destroy(&actor); //  idempotent
    ZT_EQ(ran, 1);

    zt_section("destroy, then zsys_shutdown at once, many times over");
    //  A socket left open makes zsys_shutdown keep the context, and the
    //  next cycle's zsys_init aborts the test.
    ran = 0;
    for (int i = 0; i < CYCLES; i++) {
        actor = zc_actor_new(s_serve, &ran);
        if (!ZT_CHECK(actor != NULL)) break;
        zc_actor_destroy(&actor);
        zsys_shutdown();
    }
    ZT_EQ(ran, CYCLES);

    zt_section("a body that ended on its own: destroy does not block");
    ran = 0;
    actor = zc_actor_new(s_quit, &ran);
    ZT_CHECK(actor != NULL);
    zc_actor_destroy(&actor);
    ZT_EQ(ran, 1);
    zsys_shutdown();
    return zt_done();
}
