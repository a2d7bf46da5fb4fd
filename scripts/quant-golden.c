// Writes ggml's own bytes for the block formats, so pocket's ports can be compared bit for bit.
// Built against the peer's libggml-base by scripts/make-quant-golden.sh; output in testdata/quant/.
//
// Inputs (deterministic, no libc RNG): NCASES cases of NROWS x NPR floats, written once to
// inputs.f32, and one importance matrix of NPR positive floats per case, in imatrix.f32 (both
// little-endian f32). Then for every type ggml can quantize, and each case:
//   TYPE.plain.bin    ggml_quantize_chunk(type, ..., imatrix = NULL)   (skipped if the type needs one)
//   TYPE.imatrix.bin  ggml_quantize_chunk(type, ..., imatrix)          (skipped for Q8_K and Q8_1)
//   TYPE.plain.deq / TYPE.imatrix.deq   ggml's to_float of those bytes (f32)
// with the NCASES cases concatenated in each file. Q8_K and Q8_1 use the type's from_float_ref.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ggml.h"

#define NCASES 4
#define NROWS 4
#define NPR 512

static uint64_t s = 0x9E3779B97F4A7C15ull;
static double uni(void) {  // [0, 1), xorshift64*
    s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
    return (double)((s * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}
static float gauss(void) { return (float)((uni() + uni() + uni() + uni() - 2.0) * 1.7320508); }

static void fill(int c, float * x, float * im) {
    for (int i = 0; i < NROWS * NPR; i++) {
        float v = gauss();
        switch (c) {
            case 0: x[i] = v; break;                                   // plain, unit scale
            case 1: x[i] = (i % 97 == 0) ? v * 40.0f : (i / 32 % 7 == 3 ? 0.0f : v); break;  // outliers, zero blocks
            case 2: x[i] = v * 1e-3f + (i % 2 ? 2e-4f : -1e-4f); break; // small, offset
            case 3: x[i] = (i / 256 % 2) ? fabsf(v) * 3.0f : -fabsf(v) * 0.5f; break; // one-signed super-blocks
        }
    }
    for (int j = 0; j < NPR; j++) im[j] = (float)(0.05 + uni() * uni() * 4.0);
}

static void put(const char * dir, const char * name, const void * p, size_t n, const char * mode) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE * f = fopen(path, mode);
    if (!f || fwrite(p, 1, n, f) != n) { perror(path); exit(1); }
    fclose(f);
}

int main(int argc, char ** argv) {
    const char * dir = argc > 1 ? argv[1] : ".";
    static float x[NCASES][NROWS * NPR], im[NCASES][NPR], y[NROWS * NPR];
    for (int c = 0; c < NCASES; c++) fill(c, x[c], im[c]);
    put(dir, "inputs.f32", x, sizeof x, "wb");
    put(dir, "imatrix.f32", im, sizeof im, "wb");
    static uint8_t q[NROWS * NPR * 4];
    for (int t = 0; t < GGML_TYPE_COUNT; t++) {
        const struct ggml_type_traits * tr = ggml_get_type_traits((enum ggml_type) t);
        if (tr->blck_size == 0 || !tr->to_float) continue;  // removed ids
        int via_ref = (t == GGML_TYPE_Q8_K || t == GGML_TYPE_Q8_1);
        if (t == GGML_TYPE_I8 || t == GGML_TYPE_I16 || t == GGML_TYPE_I32 || t == GGML_TYPE_I64 || t == GGML_TYPE_F64) continue;
        if (via_ref && !tr->from_float_ref) continue;
        size_t row = ggml_row_size((enum ggml_type) t, NPR);
        for (int v = 0; v < 2; v++) {
            if (v == 0 && ggml_quantize_requires_imatrix((enum ggml_type) t)) continue;
            if (v == 1 && (via_ref || t == GGML_TYPE_F32 || t == GGML_TYPE_F16 || t == GGML_TYPE_BF16)) continue;
            char name[128];
            for (int c = 0; c < NCASES; c++) {
                const char * mode = c == 0 ? "wb" : "ab";
                if (via_ref) tr->from_float_ref(x[c], q, NROWS * NPR);
                else ggml_quantize_chunk((enum ggml_type) t, x[c], q, 0, NROWS, NPR, v ? im[c] : NULL);
                snprintf(name, sizeof name, "%s.%s.bin", ggml_type_name((enum ggml_type) t), v ? "imatrix" : "plain");
                put(dir, name, q, row * NROWS, mode);
                tr->to_float(q, y, NROWS * NPR);
                snprintf(name, sizeof name, "%s.%s.deq", ggml_type_name((enum ggml_type) t), v ? "imatrix" : "plain");
                put(dir, name, y, sizeof y, mode);
            }
        }
    }
    return 0;
}
