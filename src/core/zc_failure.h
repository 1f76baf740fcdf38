/*  zc_failure — an object's last failure: the storage behind every
    zc_X_error / zc_X_errstr pair of the public API (see zc_error.h).

    Written once so that every class records, clears and reports its
    failures the same way. Private to libzcluster.
*/
#ifndef ZC_FAILURE_H_INCLUDED
#define ZC_FAILURE_H_INCLUDED

#include "zc_error.h"

#include <stdarg.h>

typedef struct {
    zc_error_t kind; //  ZC_OK after a call that succeeded
    char text[512];  //  "" after a call that succeeded
} zc_failure_t;

//  Records a failure of this kind with a printf-style message. Returns -1,
//  so a function can end with `return zc_failure_set (...)`.
int zc_failure_set(zc_failure_t *self, zc_error_t kind, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

//  The same with a va_list.
int zc_failure_setv(zc_failure_t *self, zc_error_t kind, const char *format, va_list args)
    __attribute__((format(printf, 3, 0)));

//  Records a success (ZC_OK, no message). Returns 0.
int zc_failure_clear(zc_failure_t *self);

#endif
