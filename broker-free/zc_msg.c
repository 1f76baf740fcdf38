/*  zc_msg — a received message's accessors. See zc_msg.h. */
#include "zc_msg.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

int zc_msg_kind(const zc_msg_t *msg)
{
    return msg->header.kind;
}

const char *zc_msg_type(const zc_msg_t *msg)
{
    return msg->header.type;
}

const char *zc_msg_sender(const zc_msg_t *msg)
{
    return msg->header.sender;
}

const char *zc_msg_group(const zc_msg_t *msg)
{
    return msg->header.kind == ZC_KIND_GROUP ? msg->group : NULL;
}

uint64_t zc_msg_seq(const zc_msg_t *msg)
{
    return msg->header.seq;
}

uint64_t zc_msg_corr(const zc_msg_t *msg)
{
    return msg->header.corr;
}

const void *zc_msg_data(const zc_msg_t *msg)
{
    return msg->data;
}

size_t zc_msg_size(const zc_msg_t *msg)
{
    return msg->size;
}

zc_msg_t *zc_msg_dup(const zc_msg_t *msg)
{
    zc_msg_t *copy = (zc_msg_t *)malloc(sizeof(zc_msg_t));
    assert(copy);
    copy->header = msg->header;
    copy->offset = msg->offset;
    memcpy(copy->group, msg->group, sizeof copy->group);
    zmq_msg_init(&copy->payload);
    zmq_msg_copy(&copy->payload, (zmq_msg_t *)&msg->payload);
    //  A small frame lives inside the zmq_msg_t itself: the copy has its own.
    copy->data = (const uint8_t *)zmq_msg_data(&copy->payload) + copy->offset;
    copy->size = msg->size;
    return copy;
}

void zc_msg_destroy(zc_msg_t **msg_p)
{
    assert(msg_p);
    if (*msg_p) {
        zmq_msg_close(&(*msg_p)->payload);
        free(*msg_p);
        *msg_p = NULL;
    }
}
