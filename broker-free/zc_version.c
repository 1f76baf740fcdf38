/*  zcluster_version — the library version string. */
#include "zc_version.h"

#define ZC_STR2(x) #x
#define ZC_STR(x)  ZC_STR2(x)

const char *zcluster_version(void)
{
    return ZC_STR(ZCLUSTER_VERSION_MAJOR) "." ZC_STR(ZCLUSTER_VERSION_MINOR) "." ZC_STR(
        ZCLUSTER_VERSION_PATCH);
}
