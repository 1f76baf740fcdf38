/*  zc_version — the library version. */
#ifndef ZC_VERSION_H_INCLUDED
#define ZC_VERSION_H_INCLUDED

#define ZCLUSTER_VERSION_MAJOR 0
#define ZCLUSTER_VERSION_MINOR 1
#define ZCLUSTER_VERSION_PATCH 0

#ifdef __cplusplus
extern "C" {
#endif

//  Returns the library version as "MAJOR.MINOR.PATCH".
const char *zcluster_version(void);

#ifdef __cplusplus
}
#endif

#endif
