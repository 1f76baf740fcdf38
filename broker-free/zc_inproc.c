/*  zc_inproc — names for the inproc endpoints the library makes itself. */
#include "zc_inproc.h"

#include <stdatomic.h>
#include <stdio.h>

void zc_inproc_endpoint(char *endpoint, size_t size, const char *what)
{
    static atomic_uint s_count;
    snprintf(endpoint, size, "inproc://zc-%s-%u", what, atomic_fetch_add(&s_count, 1));
}
