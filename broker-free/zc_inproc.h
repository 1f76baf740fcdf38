/*  zc_inproc — names for the inproc endpoints the library makes itself.

    libzmq frees an inproc name only once its closed socket is reaped, in
    the background, so a name made from an object's address can still be
    taken when a new object gets that address from malloc: every name is
    made unique in the process by a counter instead.
*/
#ifndef ZC_INPROC_H_INCLUDED
#define ZC_INPROC_H_INCLUDED

#include <stddef.h>

//  Writes "inproc://zc-WHAT-N" into endpoint (size bytes), with N never
//  given before in this process.
void zc_inproc_endpoint(char *endpoint, size_t size, const char *what);

#endif
