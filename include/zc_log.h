/*  zc_log — one-line log records on stderr.

    Every zcluster component logs through here so a user finds one format in
    one place: "zcluster LEVEL [source] message". The level comes from the
    ZC_LOG_LEVEL environment variable (error, warning, info, debug; default
    info) or zc_log_set_level().
*/
#ifndef ZC_LOG_H_INCLUDED
#define ZC_LOG_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { ZC_LOG_ERROR = 0, ZC_LOG_WARNING, ZC_LOG_INFO, ZC_LOG_DEBUG } zc_log_level_t;

//  Sets the most verbose level that is printed.
void zc_log_set_level(zc_log_level_t level);

//  Returns 1 if records at this level are printed.
int zc_log_enabled(zc_log_level_t level);

//  Prints one record if its level is enabled; source names the component or node.
void zc_log(zc_log_level_t level, const char *source, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif
