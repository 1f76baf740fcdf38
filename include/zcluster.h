/*  zcluster — one include for the whole library.

    Messaging plane (no Redis): zc_wire, zc_security, zc_mesh, zc_log.
*/
#ifndef ZCLUSTER_H_INCLUDED
#define ZCLUSTER_H_INCLUDED

#define ZCLUSTER_VERSION_MAJOR 0
#define ZCLUSTER_VERSION_MINOR 1
#define ZCLUSTER_VERSION_PATCH 0

#include "zc_log.h"
#include "zc_wire.h"
#include "zc_security.h"
#include "zc_mesh.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Returns the library version as "MAJOR.MINOR.PATCH".
const char *zcluster_version(void);

#ifdef __cplusplus
}
#endif

#endif
