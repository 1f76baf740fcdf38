/*  fuzzkit — what the libFuzzer targets (tests/fuzz_*.c) share. */
#ifndef FUZZKIT_H_INCLUDED
#define FUZZKIT_H_INCLUDED

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

//  A broken invariant: say which, and crash so that libFuzzer keeps the input.
#define CHECK(ok)                                                                                  \
    do {                                                                                           \
        if (!(ok)) {                                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #ok);                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

//  libFuzzer's entry points.
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
