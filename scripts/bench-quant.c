// ggml's side of scripts/bench-quant.sh: times ggml_quantize_chunk per type on NROWS x NPR values from
// the same xorshift generator as examples/bench_quant.rs, with 1 and with NTHREADS threads (rows split
// in contiguous halves, as llama-quantize's workers do), and prints "type imatrix threads seconds fnv";
// then the type's to_float of those bytes on one thread ("type deq 1 seconds fnv").
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ggml.h"

#define NPR 4096
#define NROWS 512

static uint64_t s = 0x9E3779B97F4A7C15ull;
static double uni(void) { s ^= s >> 12; s ^= s << 25; s ^= s >> 27; return (double)((s * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0; }

static float *x, *im; static uint8_t *q; static enum ggml_type cur; static int use_im;
struct part { int64_t r0, nr; };
static void * work(void * p) {
    struct part * a = p; size_t rs = ggml_row_size(cur, NPR);
    ggml_quantize_chunk(cur, x + a->r0 * NPR, q + a->r0 * rs, 0, a->nr, NPR, use_im ? im : NULL);
    return NULL;
}
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(int argc, char ** argv) {
    int nthreads = argc > 1 ? atoi(argv[1]) : 2;
    x = malloc(sizeof(float) * NPR * NROWS); im = malloc(sizeof(float) * NPR);
    q = malloc(NPR * NROWS * 4);
    for (int i = 0; i < NPR * NROWS; i++) x[i] = (float)((uni() + uni() + uni() + uni() - 2.0) * 1.7320508);
    for (int j = 0; j < NPR; j++) im[j] = (float)(0.05 + uni() * uni() * 4.0);
    const char * names[] = {"f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K"};
    for (size_t t = 0; t < sizeof names / sizeof *names; t++) {
        for (int e = 0; e < GGML_TYPE_COUNT; e++) if (ggml_get_type_traits(e)->type_name && !strcmp(ggml_type_name(e), names[t])) cur = e;
        ggml_quantize_init(cur);
        for (use_im = 0; use_im < 2; use_im++) {
            if (use_im && (cur == GGML_TYPE_F16 || cur == GGML_TYPE_BF16 || cur == GGML_TYPE_Q8_0)) continue;
            int ths[2] = {1, nthreads};
            for (int k = 0; k < 2; k++) {
                int n = ths[k]; pthread_t th[64]; struct part pa[64];
                double best = 1e9;
                for (int rep = 0; rep < 5; rep++) {
                    double t0 = now();
                    for (int i = 0; i < n; i++) { pa[i].r0 = (int64_t)NROWS * i / n; pa[i].nr = (int64_t)NROWS * (i + 1) / n - pa[i].r0; pthread_create(&th[i], NULL, work, &pa[i]); }
                    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
                    double dt = now() - t0; if (dt < best) best = dt;
                }
                size_t bytes = ggml_row_size(cur, NPR) * NROWS; uint64_t h = 0xcbf29ce484222325ull;
                for (size_t i = 0; i < bytes; i++) { h ^= q[i]; h *= 0x100000001b3ull; }
                printf("%s %d %d %.6f %016llx\n", names[t], use_im, n, best, (unsigned long long)h);
                fflush(stdout);
            }
        }
        // Decoding the last bytes (imatrix ones where there are), single thread.
        {
            static float y[NPR * NROWS];
            double best = 1e9;
            for (int rep = 0; rep < 5; rep++) {
                double t0 = now();
                ggml_get_type_traits(cur)->to_float(q, y, (int64_t)NPR * NROWS);
                double dt = now() - t0; if (dt < best) best = dt;
            }
            uint64_t h = 0xcbf29ce484222325ull;
            const uint8_t * yb = (const uint8_t *) y;
            for (size_t i = 0; i < sizeof y; i++) { h ^= yb[i]; h *= 0x100000001b3ull; }
            printf("%s deq 1 %.6f %016llx\n", names[t], best, (unsigned long long)h);
            fflush(stdout);
        }
    }
    return 0;
}
