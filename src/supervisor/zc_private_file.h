/*  zc_private_file — a file only its owner reads, written whole (internal
    to libzcluster): the runtime directory's admin.key and admin.json, and
    the configuration files of a local HA setup, which hold its password.
*/
#ifndef ZC_PRIVATE_FILE_H_INCLUDED
#define ZC_PRIVATE_FILE_H_INCLUDED

//  Writes text to path, mode 0600, through path.tmp renamed into place, so
//  a reader never sees half a file. Returns 0, or -1 with errno set (the
//  temporary file is removed).
int zc_private_file_write(const char *path, const char *text);

#endif
