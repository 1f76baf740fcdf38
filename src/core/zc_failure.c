/*  zc_failure — an object's last failure. See zc_failure.h. */
#include "zc_failure.h"

#include <assert.h>
#include <stdio.h>

int zc_failure_setv(zc_failure_t *self, zc_error_t kind, const char *format, va_list args)
{
    assert(self && format);
    vsnprintf(self->text, sizeof self->text, format, args);
    self->kind = kind;
    return -1;
}

int zc_failure_set(zc_failure_t *self, zc_error_t kind, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    zc_failure_setv(self, kind, format, args);
    va_end(args);
    return -1;
}

int zc_failure_clear(zc_failure_t *self)
{
    assert(self);
    self->kind = ZC_OK;
    self->text[0] = 0;
    return 0;
}
