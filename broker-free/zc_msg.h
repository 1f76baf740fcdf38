/*  zc_msg — a received message, as the mesh hands it out (private to the
    messaging plane: applications use the zc_msg_ accessors in zc_mesh.h).

    The payload is not copied out of the frame libzmq received: the message
    keeps the whole frame and the offset where the payload starts, so a
    receive costs no allocation and zc_msg_dup shares the frame.
*/
#ifndef ZC_MSG_H_INCLUDED
#define ZC_MSG_H_INCLUDED

#include "zc_mesh.h"

struct _zc_msg_t {
    zc_header_t header;
    char group[ZC_NAME_MAX + 1];
    zmq_msg_t payload;   //  the whole frame, kept until the next receive: not copied
    size_t offset;       //  where the payload starts in it
    const uint8_t *data; //  the payload (in payload's frame), and its size: set once,
    size_t size;         //  read by the accessors without asking libzmq again
};

#endif
