// ggml's side of scripts/bench-quant.py: times ggml_quantize_chunk (the peer's libggml-base) for each
// type named on the command line, on NROWS x NPR values from the same xorshift generator as
// examples/quant_bench.rs, with an importance matrix when asked, split over 2 threads by rows as
// llama-quantize splits a tensor. Prints "TYPE MILLISECONDS": the best of at least 5 repetitions and
// of as many as fit in half a second (at most 50), since the machine may be shared.
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ggml.h"

#define NROWS 128
#define NPR 4096
#define NTHREADS 2

static uint64_t s = 0x9E3779B97F4A7C15ull;
static double uni(void) {
    s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
    return (double)((s * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

struct job { enum ggml_type t; const float * x; void * q; int64_t row0, nrows; const float * im; };

static void * run(void * p) {
    struct job * j = p;
    ggml_quantize_chunk(j->t, j->x, j->q, j->row0 * NPR, j->nrows, NPR, j->im);
    return NULL;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char ** argv) {
    float * x = malloc(sizeof(float) * NROWS * NPR);
    float * im = malloc(sizeof(float) * NPR);
    for (int i = 0; i < NROWS * NPR; i++) x[i] = (float)((uni() + uni() + uni() + uni() - 2.0) * 1.7320508);
    for (int i = 0; i < NPR; i++) im[i] = (float)(0.05 + uni() * uni() * 4.0);
    void * q = malloc(NROWS * NPR * 4);
    for (int a = 1; a < argc; a++) {
        char name[64];
        snprintf(name, sizeof name, "%s", argv[a]);
        int with_im = 0;
        char * colon = strchr(name, ':');
        if (colon) { *colon = 0; with_im = 1; }
        enum ggml_type t = GGML_TYPE_COUNT;
        for (int i = 0; i < GGML_TYPE_COUNT; i++) {
            const char * n = ggml_type_name((enum ggml_type) i);
            if (n && strcmp(n, name) == 0) t = (enum ggml_type) i;
        }
        if (t == GGML_TYPE_COUNT) { fprintf(stderr, "unknown type %s\n", name); return 2; }
        const float * w = with_im ? im : NULL;
        ggml_quantize_chunk(t, x, q, 0, 1, NPR, w);  // builds ggml's lattices once, outside the timing
        double best = 1e30, total = 0;
        for (int r = 0; r < 50 && (r < 5 || total < 500); r++) {
            pthread_t th[NTHREADS];
            struct job jobs[NTHREADS];
            double t0 = now_ms();
            for (int k = 0; k < NTHREADS; k++) {
                int64_t r0 = NROWS * k / NTHREADS, r1 = NROWS * (k + 1) / NTHREADS;
                jobs[k] = (struct job){ t, x, (char *) q + r0 * ggml_row_size(t, NPR), r0, r1 - r0, w };
                pthread_create(&th[k], NULL, run, &jobs[k]);
            }
            for (int k = 0; k < NTHREADS; k++) pthread_join(th[k], NULL);
            double dt = now_ms() - t0;
            if (dt < best) best = dt;
            total += dt;
        }
        printf("%s %.3f\n", argv[a], best);
    }
    return 0;
}
